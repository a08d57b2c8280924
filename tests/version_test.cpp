// SPDX-License-Identifier: MIT
// mproc::version is the one in CMakeLists.txt's project line (the build passes it in as
// MPROC_PROJECT_VERSION), in every form the header gives it.

#include <gtest/gtest.h>

#include <string>

#include <mproc/mproc.hpp>

TEST(Version, IsTheProjectVersionInEveryForm) {
    const std::string project = MPROC_PROJECT_VERSION;
    EXPECT_EQ(std::string(mproc::version_string), project);
    EXPECT_EQ(std::to_string(mproc::version.major) + "." + std::to_string(mproc::version.minor) +
                  "." + std::to_string(mproc::version.patch),
              project);
    static_assert(mproc::version.major == MPROC_VERSION_MAJOR);
    static_assert(mproc::version.minor == MPROC_VERSION_MINOR);
    static_assert(mproc::version.patch == MPROC_VERSION_PATCH);
}
