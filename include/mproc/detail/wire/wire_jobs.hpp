// SPDX-License-Identifier: MIT
#pragma once
// Every call kind's wire half: what a backend that crosses processes includes, so that
// wire_job_t names the wire job of any core job the front end builds.

#include "mproc/detail/wire/apply_wire_job.hpp"
#include "mproc/detail/wire/imap_wire_job.hpp"
#include "mproc/detail/wire/map_wire_job.hpp"
#include "mproc/detail/wire/shared_array_codec.hpp"
#include "mproc/detail/wire/wire_job.hpp"
