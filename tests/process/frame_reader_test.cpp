// SPDX-License-Identifier: MIT
// FrameReader: the buffered side of the channel. One recv may bring several frames, or part of
// one; either way each frame comes out whole, in order, with the same checks as receive_frame.

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <thread>
#include <vector>

#include "mproc/detail/wire/wire.hpp"
#include "process/channel.hpp"
#include "socket_pair.hpp"

namespace {

using namespace mproc::detail;

/// Appends a `kind` frame whose payload is `size` bytes counting up from `seed`.
void append_frame(WireWriter& out, FrameKind kind, std::size_t size, unsigned seed) {
    const std::size_t header = begin_frame(out);
    for (std::size_t i = 0; i < size; ++i) {
        out.write(static_cast<std::uint8_t>(seed + i));
    }
    end_frame(out, header, kind);
}

void expect_payload(std::span<const std::byte> payload, std::size_t size, unsigned seed) {
    ASSERT_EQ(payload.size(), size);
    for (std::size_t i = 0; i < size; ++i) {
        ASSERT_EQ(static_cast<std::uint8_t>(payload[i]), static_cast<std::uint8_t>(seed + i));
    }
}

TEST(FrameReader, SeveralFramesSentAtOnceComeOutOneByOneFromOneRead) {
    SocketPair channel;
    WireWriter batch;
    append_frame(batch, FrameKind::run, 10, 1);
    append_frame(batch, FrameKind::stop, 0, 0);
    append_frame(batch, FrameKind::done, 300, 7);
    send_bytes(channel.fd[0], {batch.data(), batch.size()});

    FrameReader reader;
    FrameKind kind{};
    std::span<const std::byte> payload;
    ASSERT_TRUE(reader.next(channel.fd[1], kind, payload));
    EXPECT_EQ(kind, FrameKind::run);
    expect_payload(payload, 10, 1);
    // The other two are already in: no system call needed for them.
    EXPECT_TRUE(reader.has_whole_frame());
    ASSERT_TRUE(reader.next(channel.fd[1], kind, payload));
    EXPECT_EQ(kind, FrameKind::stop);
    EXPECT_TRUE(payload.empty());
    ASSERT_TRUE(reader.next(channel.fd[1], kind, payload));
    EXPECT_EQ(kind, FrameKind::done);
    expect_payload(payload, 300, 7);
    EXPECT_FALSE(reader.has_buffered_bytes());

    channel.close_writer();
    EXPECT_FALSE(reader.next(channel.fd[1], kind, payload)); // end of stream at a boundary
}

/// Appends a `kind` frame: `before` counting bytes, a block of `block.size()` bytes written
/// with write_borrowed, and `after` counting bytes.
void append_borrowing_frame(WireWriter& out, FrameKind kind, const std::vector<std::byte>& block,
                            std::size_t before, std::size_t after) {
    const std::size_t header = begin_frame(out);
    for (std::size_t i = 0; i < before; ++i) {
        out.write(static_cast<std::uint8_t>(i));
    }
    out.write_borrowed(block.data(), block.size());
    for (std::size_t i = 0; i < after; ++i) {
        out.write(static_cast<std::uint8_t>(i));
    }
    end_frame(out, header, kind);
}

std::vector<std::byte> counting_block(std::size_t size, unsigned seed) {
    std::vector<std::byte> block(size);
    for (std::size_t i = 0; i < size; ++i) {
        block[i] = static_cast<std::byte>(seed + i);
    }
    return block;
}

void expect_borrowing_payload(std::span<const std::byte> payload, std::size_t before,
                              std::size_t block, unsigned seed, std::size_t after) {
    ASSERT_EQ(payload.size(), before + block + after);
    expect_payload(payload.first(before), before, 0);
    expect_payload(payload.subspan(before, block), block, seed);
    expect_payload(payload.last(after), after, 0);
}

TEST(FrameReader, FramesThatReferToLargeBlocksArriveWholeAndInOrder) {
    // A worker's outbox refers to the large blocks of a map's input instead of copying them
    // (WireWriter::write_borrowed); its frames go out gathered (send_writer), headers patched
    // past earlier blocks, and a frame refused after it was begun leaves nothing behind.
    SocketPair channel;
    const auto first = counting_block(40000, 3);
    const auto second = counting_block(20000, 9);
    WireWriter outbox;
    outbox.allow_borrowing();
    append_frame(outbox, FrameKind::run, 5, 1);
    append_borrowing_frame(outbox, FrameKind::run, first, 17, 3);
    const std::size_t refused = outbox.size();
    append_borrowing_frame(outbox, FrameKind::run, second, 2, 2);
    outbox.truncate(refused); // as add_to_outbox drops a request that may not wait
    append_borrowing_frame(outbox, FrameKind::run, second, 0, 11);
    append_frame(outbox, FrameKind::stop, 0, 0);
    // Four frames (the refused one gone): their headers, own bytes and both blocks.
    EXPECT_EQ(outbox.size(), 4 * sizeof(FrameHeader) + 5 + (17 + 40000 + 3) + (20000 + 11));
    std::thread writer([&] { send_writer(channel.fd[0], outbox); });

    FrameReader reader;
    FrameKind kind{};
    std::span<const std::byte> payload;
    ASSERT_TRUE(reader.next(channel.fd[1], kind, payload));
    expect_payload(payload, 5, 1);
    ASSERT_TRUE(reader.next(channel.fd[1], kind, payload));
    EXPECT_EQ(kind, FrameKind::run);
    expect_borrowing_payload(payload, 17, first.size(), 3, 3);
    ASSERT_TRUE(reader.next(channel.fd[1], kind, payload));
    EXPECT_EQ(kind, FrameKind::run);
    expect_borrowing_payload(payload, 0, second.size(), 9, 11);
    ASSERT_TRUE(reader.next(channel.fd[1], kind, payload));
    EXPECT_EQ(kind, FrameKind::stop);
    writer.join();
}

TEST(FrameReader, AWriterThatDoesNotBorrowCopiesTheBlock) {
    // Every other writer (MPI messages, a worker's answers) copies: the block may change or end
    // right after.
    auto block = counting_block(50000, 5);
    WireWriter out;
    out.write_borrowed(block.data(), block.size());
    block.assign(block.size(), std::byte{0});
    ASSERT_EQ(out.size(), 50000u);
    expect_payload({out.data(), out.size()}, 50000, 5);
}

TEST(FrameReader, AnAnswerCarriesTheRunTimeOfItsChunk) {
    SocketPair channel;
    const std::byte payload_bytes[3] = {std::byte{1}, std::byte{2}, std::byte{3}};
    send_frame(channel.fd[0], FrameKind::done, payload_bytes, 3, 12'345);
    send_frame(channel.fd[0], FrameKind::failed, nullptr, 0, saturated_run_ns(UINT64_MAX));
    FrameReader reader;
    FrameKind kind{};
    std::span<const std::byte> payload;
    ASSERT_TRUE(reader.next(channel.fd[1], kind, payload));
    EXPECT_EQ(kind, FrameKind::done);
    EXPECT_EQ(payload.size(), 3u);
    EXPECT_EQ(reader.run_ns(), 12'345u);
    ASSERT_TRUE(reader.next(channel.fd[1], kind, payload));
    EXPECT_EQ(kind, FrameKind::failed);
    EXPECT_EQ(reader.run_ns(), UINT32_MAX);
}

TEST(FrameReader, AFrameArrivingInPiecesComesOutWhole) {
    SocketPair channel;
    WireWriter frame;
    constexpr std::size_t size = std::size_t{3} << 20; // beyond the first buffer: it grows
    append_frame(frame, FrameKind::done, size, 3);
    std::thread writer([&] {
        std::size_t sent = 0;
        for (const std::size_t piece : {std::size_t{5}, std::size_t{100}, std::size_t{70000}}) {
            send_bytes(channel.fd[0], {frame.data() + sent, piece});
            sent += piece;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        send_bytes(channel.fd[0], {frame.data() + sent, frame.size() - sent});
    });
    FrameReader reader;
    FrameKind kind{};
    std::span<const std::byte> payload;
    ASSERT_TRUE(reader.next(channel.fd[1], kind, payload));
    writer.join();
    EXPECT_EQ(kind, FrameKind::done);
    expect_payload(payload, size, 3);
}

TEST(FrameReader, AnUnknownKindOrAnAbsurdSizeIsRefused) {
    for (const FrameHeader header :
         {FrameHeader{99, 0, 0},
          FrameHeader{static_cast<std::uint32_t>(FrameKind::done), 0, max_frame_payload + 1}}) {
        SocketPair channel;
        send_bytes(channel.fd[0], {reinterpret_cast<const std::byte*>(&header), sizeof(header)});
        FrameReader reader;
        FrameKind kind{};
        std::span<const std::byte> payload;
        EXPECT_THROW(reader.next(channel.fd[1], kind, payload), WireError);
    }
}

TEST(FrameReader, AnEndOfStreamInsideAFrameIsATruncatedFrame) {
    SocketPair channel;
    WireWriter batch;
    append_frame(batch, FrameKind::done, 8, 0);
    append_frame(batch, FrameKind::done, 1000, 0);
    // The whole first frame, half of the second one's header, then the end.
    const std::size_t cut = 2 * sizeof(FrameHeader) + 8 - sizeof(FrameHeader) / 2;
    send_bytes(channel.fd[0], {batch.data(), cut});
    channel.close_writer();
    FrameReader reader;
    FrameKind kind{};
    std::span<const std::byte> payload;
    ASSERT_TRUE(reader.next(channel.fd[1], kind, payload));
    expect_payload(payload, 8, 0);
    EXPECT_TRUE(reader.has_buffered_bytes());
    EXPECT_FALSE(reader.has_whole_frame());
    EXPECT_THROW(reader.next(channel.fd[1], kind, payload), WireError);
}

TEST(FrameReader, AStallInsideAFrameHitsTheReceiveTimeout) {
    SocketPair channel;
    const timeval limit{0, 100'000};
    ASSERT_EQ(setsockopt(channel.fd[1], SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit)), 0);
    WireWriter frame;
    append_frame(frame, FrameKind::done, 1000, 0);
    send_bytes(channel.fd[0], {frame.data(), frame.size() - 1}); // and the last byte never
    FrameReader reader;
    FrameKind kind{};
    std::span<const std::byte> payload;
    EXPECT_THROW(reader.next(channel.fd[1], kind, payload), WireError);
}

} // namespace
