# SPDX-License-Identifier: MIT
# Runs a compiler command and checks its outcome:
#   cmake -DEXPECTED_MESSAGE=<text> [-DEXPECTED_ALSO=<text;text...>] -P check_compile_failure.cmake
#       -- <compiler> <arguments...>
# With EXPECTED_MESSAGE empty the command must succeed (the control case). Otherwise it must
# fail AND its output must contain EXPECTED_MESSAGE, so that a file failing for another reason
# (a typo, a missing include) does not pass as a refusal, and each text of EXPECTED_ALSO (the
# user's file and line the diagnostic must name, the offending type).

set(command "")
set(after_separator FALSE)
math(EXPR last "${CMAKE_ARGC} - 1")
foreach(i RANGE ${last})
    if(after_separator)
        list(APPEND command "${CMAKE_ARGV${i}}")
    elseif("${CMAKE_ARGV${i}}" STREQUAL "--")
        set(after_separator TRUE)
    endif()
endforeach()
if(NOT command)
    message(FATAL_ERROR "usage: cmake -DEXPECTED_MESSAGE=<text> -P ${CMAKE_SCRIPT_MODE_FILE} -- <command...>")
endif()

execute_process(COMMAND ${command} RESULT_VARIABLE result OUTPUT_VARIABLE output
    ERROR_VARIABLE output)

if("${EXPECTED_MESSAGE}" STREQUAL "")
    if(NOT result EQUAL 0)
        message(FATAL_ERROR "the control file did not compile (exit ${result}):\n${output}")
    endif()
    message(STATUS "compiled, as it should")
    return()
endif()

if(result EQUAL 0)
    message(FATAL_ERROR "compiled, but must be refused with \"${EXPECTED_MESSAGE}\"")
endif()
string(FIND "${output}" "${EXPECTED_MESSAGE}" at)
if(at EQUAL -1)
    message(FATAL_ERROR
        "failed to compile, but not with \"${EXPECTED_MESSAGE}\" (exit ${result}):\n${output}")
endif()
foreach(expected IN LISTS EXPECTED_ALSO)
    string(FIND "${output}" "${expected}" at)
    if(at EQUAL -1)
        message(FATAL_ERROR
            "refused with \"${EXPECTED_MESSAGE}\", but the output lacks \"${expected}\":\n${output}")
    endif()
endforeach()
message(STATUS "refused with the expected message")
