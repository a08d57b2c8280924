#pragma once
// The pool classes the conformance suite runs against. A new backend proves itself by being
// added here and passing every typed test unchanged.

#include <gtest/gtest.h>

#include <mproc/mproc.hpp>

using PoolTypes = ::testing::Types<mproc::ThreadPool, mproc::Pool>;
