// SPDX-License-Identifier: MIT
// How the MPI polling loops pace their polls (PollBackoff): back to back after progress, then
// longer and longer sleeps; and, given when the next message is due, asleep until shortly
// before it and back to back around it. Pure arithmetic on the clock: no MPI.

#include <gtest/gtest.h>

#include <chrono>

#include "mpi/mpi_link.hpp"

namespace {

using mproc::detail::PollBackoff;
using namespace std::chrono_literals;

constexpr unsigned long_spin_us = 10'000'000; // never runs out within a test
constexpr unsigned longest_sleep_us = 500;

TEST(PollBackoff, PollsBackToBackAfterProgressThenSleepsLongerAndLonger) {
    PollBackoff backoff(0, longest_sleep_us); // no spin: backs off at once
    unsigned previous = 0;
    for (int i = 0; i < 64; ++i) {
        const unsigned wait = backoff.next_wait_us();
        EXPECT_GT(wait, 0u);
        EXPECT_GE(wait, previous);
        EXPECT_LE(wait, longest_sleep_us);
        previous = wait;
    }
    EXPECT_EQ(previous, longest_sleep_us);

    PollBackoff spinning(long_spin_us, longest_sleep_us);
    spinning.reset();
    EXPECT_EQ(spinning.next_wait_us(), 0u);
}

TEST(PollBackoff, SleepsUntilShortlyBeforeAMessageIsDue) {
    PollBackoff backoff(long_spin_us, longest_sleep_us);
    backoff.reset();
    backoff.expect(PollBackoff::Clock::now() + 10s); // not for a long time: no spinning now
    EXPECT_EQ(backoff.next_wait_us(), longest_sleep_us);

    PollBackoff patient(long_spin_us, 1'000'000);
    patient.expect(PollBackoff::Clock::now() + 2ms);
    const unsigned wait = patient.next_wait_us();
    EXPECT_GT(wait, 1000u); // asleep for most of the time left ...
    EXPECT_LT(wait, 2000u); // ... and awake before it
}

TEST(PollBackoff, PollsBackToBackAroundTheDueTimeThenBacksOff) {
    PollBackoff backoff(long_spin_us, longest_sleep_us);
    backoff.expect(PollBackoff::Clock::now()); // due now
    EXPECT_EQ(backoff.next_wait_us(), 0u);

    PollBackoff overdue(0, longest_sleep_us); // not back to back once past the due time
    overdue.expect(PollBackoff::Clock::now() - 1s);
    EXPECT_GT(overdue.next_wait_us(), 0u); // long overdue: sleeping between polls again

    overdue.expect(std::nullopt); // no idea any more: the ordinary backoff
    EXPECT_GT(overdue.next_wait_us(), 0u);
}

} // namespace
