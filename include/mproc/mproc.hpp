// SPDX-License-Identifier: MIT
#pragma once
/// @file mproc.hpp
/// Everything mproc offers, in one include.

#include "mproc/address_free.hpp"
#include "mproc/async_result.hpp"
#include "mproc/basic_pool.hpp"
#include "mproc/batched.hpp"
#include "mproc/callbacks.hpp"
#include "mproc/errors.hpp"
#include "mproc/fn.hpp"
#include "mproc/lines.hpp"
#include "mproc/outcome.hpp"
#include "mproc/pool_options.hpp"
#include "mproc/portable_initializer.hpp"
#include "mproc/process_pool.hpp"
#include "mproc/progress.hpp"
#include "mproc/result_stream.hpp"
#include "mproc/resumable.hpp"
#include "mproc/serve_if_worker.hpp"
#include "mproc/shared_array.hpp"
#include "mproc/task_timeout.hpp"
#include "mproc/this_worker.hpp"
#include "mproc/thread_pool.hpp"
#include "mproc/timeline.hpp"
#include "mproc/version.hpp"
#include "mproc/wait.hpp"
