// SPDX-License-Identifier: MIT
#pragma once
// The name a test parameterised over the start methods shows for each: "All/Suite.Test/fork".

#include <gtest/gtest.h>

#include <string>

#include <mproc/pool_options.hpp>

namespace start_method_name {

inline std::string of(const ::testing::TestParamInfo<mproc::StartMethod>& info) {
    switch (info.param) {
    case mproc::StartMethod::fork:
        return "fork";
    case mproc::StartMethod::forkserver:
        return "forkserver";
    case mproc::StartMethod::spawn:
        return "spawn";
    }
    return "unknown";
}

} // namespace start_method_name
