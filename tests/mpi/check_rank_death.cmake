# SPDX-License-Identifier: MIT
# Runs rank_death_main under mpirun and checks that the job ends (within TIMEOUT seconds), with a
# non-zero exit status and a message naming the lost rank.
# -DMPIEXEC=... -DPROGRAM=... -DFLAGS=... (a ;-list) [-DMODE=in_rank: the rank dies of a task
# crashing in it, SIGSEGV, rather than of SIGKILL]
if(MODE STREQUAL "in_rank")
    set(death "signal 11|Segmentation fault")
else()
    set(death "signal 9|Killed")
endif()
execute_process(
    COMMAND ${MPIEXEC} ${FLAGS} -n 3 ${PROGRAM} ${MODE}
    RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out
    TIMEOUT 60)
message(STATUS "exit: ${result}\n${out}")
if(result MATCHES "timeout" OR result MATCHES "Process terminated due to timeout")
    message(FATAL_ERROR "the job hung after losing a rank")
endif()
if(result EQUAL 0)
    message(FATAL_ERROR "the job exited with status 0 after losing a rank")
endif()
if(out MATCHES "the job went on without rank 1")
    message(FATAL_ERROR "rank 0 got a result from a rank that was killed")
endif()
if(NOT out MATCHES "rank [12][^\n]*(${death})")
    message(FATAL_ERROR "no message names the lost rank")
endif()
message(STATUS "the job ended with status ${result} and named the lost rank")
