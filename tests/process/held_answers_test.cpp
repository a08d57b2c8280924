// SPDX-License-Identifier: MIT
// HeldAnswers / HeldAnswersView: the answers a worker holds back, in memory the caller reads
// when the worker dies. What the caller gets must be exactly the answers it has not read on the
// socket, whatever the worker sent at once, held, or sent from its held ones before it died.

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include "mproc/detail/wire/wire.hpp"
#include "process/channel.hpp"
#include "process/held_answers.hpp"
#include "socket_pair.hpp"

namespace {

using namespace mproc::detail;

/// The worker's end (fd[0]) and the caller's (fd[1]) of one channel, with the caller's reader
/// and, once the worker has sent it, its view of the held answers.
struct Channel {
    SocketPair pair;
    HeldAnswers held;
    FrameReader reader;
    std::optional<HeldAnswersView> view;

    int worker() const { return pair.fd[0]; }

    /// A one-byte answer `value`, held; the first hold sends the memory (read here).
    void hold(std::uint8_t value) {
        const std::byte payload{value};
        ASSERT_TRUE(held.hold(worker(), FrameKind::done, 100 + value, &payload, 1));
        if (!view) {
            FrameKind kind{};
            std::span<const std::byte> frame;
            ASSERT_TRUE(reader.next(pair.fd[1], kind, frame));
            ASSERT_EQ(kind, FrameKind::held_answers);
            const int fd = reader.take_received_fd();
            ASSERT_GE(fd, 0);
            view.emplace(fd);
        }
    }

    /// A one-byte answer sent at once, as a worker does when it holds nothing.
    void send_at_once(std::uint8_t value) {
        const std::byte payload{value};
        send_frame(worker(), FrameKind::done, &payload, 1);
        held.sent_one();
    }

    /// The values of the next `count` answers on the socket.
    std::vector<int> read_answers(std::size_t count) {
        std::vector<int> values;
        for (std::size_t i = 0; i < count; ++i) {
            FrameKind kind{};
            std::span<const std::byte> frame;
            EXPECT_TRUE(reader.next(pair.fd[1], kind, frame));
            EXPECT_EQ(kind, FrameKind::done);
            values.push_back(frame.empty() ? -1 : static_cast<int>(frame[0]));
        }
        return values;
    }
};

/// The values of held frames as unread_frames returns them, checking their headers.
std::vector<int> values_of(const std::vector<std::byte>& frames) {
    std::vector<int> values;
    WireReader in(frames.data(), frames.size());
    while (in.remaining() > 0) {
        const auto header = in.read<FrameHeader>();
        EXPECT_EQ(checked_frame_kind(header), FrameKind::done);
        EXPECT_EQ(header.size, 1u);
        const std::byte value = *in.take(1);
        EXPECT_EQ(header.run_ns, 100u + static_cast<unsigned>(value));
        values.push_back(static_cast<int>(value));
    }
    return values;
}

TEST(HeldAnswers, TheCallerSeesWhatIsHeldAndNotYetRead) {
    Channel channel;
    channel.hold(1);
    channel.hold(2);
    channel.hold(3);
    EXPECT_EQ(channel.held.count(), 3u);
    EXPECT_EQ(values_of(channel.view->unread_frames(0)), (std::vector<int>{1, 2, 3}));
}

TEST(HeldAnswers, SentHeldAnswersAreNotHeldAnyMore) {
    Channel channel;
    channel.hold(1);
    channel.hold(2);
    channel.held.send(channel.worker());
    EXPECT_EQ(channel.held.count(), 0u);
    EXPECT_EQ(channel.read_answers(2), (std::vector<int>{1, 2}));
    EXPECT_TRUE(channel.view->unread_frames(2).empty());
}

TEST(HeldAnswers, AWorkerThatDiedAfterSendingButBeforeForgettingIsNotReadTwice) {
    // The caller has read the first two of three held answers on the socket (the worker died
    // in the middle of sending, or just after): only the third is still to come.
    Channel channel;
    channel.hold(1);
    channel.hold(2);
    channel.hold(3);
    EXPECT_EQ(values_of(channel.view->unread_frames(2)), (std::vector<int>{3}));
    EXPECT_TRUE(channel.view->unread_frames(3).empty());
}

TEST(HeldAnswers, AnswersSentAtOnceBetweenHeldOnesAreCounted) {
    // Held, sent; then two sent at once; then one held: the caller, having read four, must get
    // the fifth (a stale count of answers sent would make it skip it).
    Channel channel;
    channel.hold(1);
    channel.held.send(channel.worker());
    channel.send_at_once(2);
    channel.send_at_once(3);
    channel.send_at_once(4);
    EXPECT_EQ(channel.read_answers(4), (std::vector<int>{1, 2, 3, 4}));
    channel.hold(5);
    EXPECT_EQ(values_of(channel.view->unread_frames(4)), (std::vector<int>{5}));
}

TEST(HeldAnswers, AnAnswerThatDoesNotFitIsRefusedAndNothingHeldChanges) {
    Channel channel;
    channel.hold(7);
    std::vector<std::byte> big(held_answers_capacity);
    EXPECT_FALSE(channel.held.hold(channel.worker(), FrameKind::done, 0, big.data(), big.size()));
    EXPECT_EQ(channel.held.count(), 1u);
    EXPECT_EQ(values_of(channel.view->unread_frames(0)), (std::vector<int>{7}));
}

TEST(HeldAnswers, ACountOfAnswersTheCallerNeverGotIsNotBelieved) {
    Channel channel;
    channel.send_at_once(1);
    channel.send_at_once(2);
    EXPECT_EQ(channel.read_answers(2), (std::vector<int>{1, 2}));
    channel.hold(3); // held after two sent: a caller that claims to have read none is wrong
    EXPECT_THROW((void)channel.view->unread_frames(0), WireError);
}

TEST(HeldAnswersView, RefusesMemoryThatIsNotAWorkersHeldAnswers) {
    const int fd = ::memfd_create("not-held-answers", MFD_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 4096), 0);
    EXPECT_THROW(HeldAnswersView{fd}, WireError); // the wrong size; the view closes fd
}

} // namespace
