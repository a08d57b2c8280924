// SPDX-License-Identifier: MIT
#pragma once
// imap/imap_unordered: results streamed to one consumer while the input is read lazily.
//
// The consumer's thread does the feeding: each time it asks for a result it first tops up the
// window (reads input items, forms chunks, submits them) until `window` chunks are in flight or
// unconsumed. So the input is only ever touched by the consumer's thread (a user generator
// needs no lock), an exception from the input surfaces in order, and a slow consumer stops the
// input from being read (backpressure): memory stays bounded by window * chunksize items, and
// by the items actually read. The window may grow while chunks come back fast, up to a fixed limit
// (stream_window.hpp).
//
// A slot is a chunk with the storage of its items' results: free, in flight, done (results
// waiting), or being consumed. Slots are made only when the window has room and the input has
// items for them, and each one's storage grows only as items are read into it (it keeps its
// capacity when the slot is reused), so a stream's memory follows what it read, never the
// chunksize or buffersize it was asked for. `Chunk::first` is the index in the caller's input of
// the chunk's first item.

#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "mproc/detail/deadline.hpp"
#include "mproc/detail/function.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/detail/spin_wait.hpp"
#include "mproc/detail/stream_window.hpp"
#include "mproc/detail/wait_helper.hpp"
#include "mproc/errors.hpp"
#include "mproc/outcome.hpp"

namespace mproc::detail {

enum class Order { input, completion };

/// One chunk of a stream with its items' results, by offset in the chunk. Backends hold it as
/// the Chunk it derives from; the job reaches the rest through that Chunk (StreamJob::slot_of),
/// never through its container of slots, which the consumer may be growing meanwhile.
template <class T>
struct StreamSlot : Chunk {
    StreamSlot() = default;
    StreamSlot(const StreamSlot&) = delete;
    StreamSlot& operator=(const StreamSlot&) = delete;
    virtual ~StreamSlot() = default;

    // Sized by the consumer before the chunk is submitted; written by the worker that runs it,
    // read by the consumer once the chunk is done.
    std::vector<std::optional<T>> values;
    std::vector<std::exception_ptr> errors;
    // Guarded by the job's mutex: whether the chunk has settled, and the next slot in the
    // queue (of submitted or of done slots) this one waits in.
    bool done = false;
    StreamSlot* next_queued = nullptr;
};

/// A FIFO of slots linked through StreamSlot::next_queued: pushing never allocates, so a worker
/// settling a chunk (which must not throw) can always queue its slot.
template <class Slot>
class SlotQueue {
  public:
    bool empty() const noexcept { return head_ == nullptr; }
    Slot* front() const noexcept { return head_; }
    void push(Slot* slot) noexcept {
        slot->next_queued = nullptr;
        (tail_ != nullptr ? tail_->next_queued : head_) = slot;
        tail_ = slot;
    }
    Slot* pop() noexcept {
        Slot* slot = head_;
        head_ = slot->next_queued;
        if (head_ == nullptr) {
            tail_ = nullptr;
        }
        return slot;
    }

  private:
    Slot* head_ = nullptr;
    Slot* tail_ = nullptr;
};

/// The consumer-facing half, independent of the function and the input type.
template <class T>
class StreamJob : public Job, public Feeder {
  public:
    enum class Fetched { item, end, timeout };
    using Slot = StreamSlot<T>;

    /// Waits for the next result (in input or completion order). On `item`, `*value` holds it,
    /// or the item's exception is thrown; after the input and every chunk are exhausted, a
    /// pending input/cut error is thrown once, then `end` is returned for ever.
    Fetched fetch(Clock::time_point deadline, std::optional<T>* value) {
        for (;;) {
            if (current_ != nullptr && current_offset_ < current_->count) {
                return take_current_item(value);
            }
            if (current_ != nullptr) {
                free_slot(*std::exchange(current_, nullptr));
            }
            fill_window();
            const std::size_t events_seen = events_.load(std::memory_order_acquire);
            std::unique_lock lock(mutex_);
            auto next_ready = [&] { return next_ready_locked(); };
            if (WaitHelper* helper = current_wait_helper(); helper && !next_ready() && !idle()) {
                lock.unlock();
                help_until(
                    *helper, deadline,
                    [&] {
                        std::lock_guard relock(mutex_);
                        return next_ready() || idle();
                    },
                    [&](Clock::time_point until) {
                        std::unique_lock relock(mutex_);
                        changed_.wait_until(relock, until, [&] { return next_ready() || idle(); });
                    });
                lock.lock();
            } else if (!next_ready() && !idle() && deadline - Clock::now() > waiter_spin_budget) {
                // Poll briefly before sleeping: a chunk in flight often settles sooner than a
                // sleep and a wake-up would take.
                lock.unlock();
                spin_until([&] { return events_.load(std::memory_order_acquire) != events_seen; },
                           waiter_spin_budget);
                lock.lock();
            }
            const bool ready =
                deadline == Clock::time_point::max()
                    ? (changed_.wait(lock, [&] { return next_ready() || idle(); }), true)
                    : changed_.wait_until(lock, deadline, [&] { return next_ready() || idle(); });
            if (!ready) {
                return Fetched::timeout;
            }
            if (next_ready()) {
                current_ = order_ == Order::input ? in_order_.pop() : completed_.pop();
                current_offset_ = 0;
                continue;
            }
            // Nothing in flight and nothing more will be read.
            if (terminal_error_) {
                std::rethrow_exception(std::exchange(terminal_error_, nullptr));
            }
            return Fetched::end;
        }
    }

    /// For co_await on the stream: arranges for `observer` to be called once fetch() would not
    /// wait (a result is ready, or nothing more will come), on the thread that makes it so;
    /// false, keeping nothing, when fetch() would not wait now. The consumer's one observer,
    /// dropped by abandon(); it must not throw.
    bool observe_next(Function<void()> observer) {
        std::lock_guard lock(mutex_);
        if (next_ready_locked() || idle()) {
            return false;
        }
        next_observer_ = std::move(observer);
        return true;
    }

    /// The consumer's handle went away: chunks not started are skipped, results are dropped.
    /// What is not in flight (the input, results already settled) is destroyed here, on the
    /// consumer's thread: a worker may hold the last reference to the job a moment longer.
    void abandon() noexcept {
        abandoned_.store(true, std::memory_order_relaxed);
        {
            std::lock_guard lock(mutex_);
            next_observer_ = {}; // nobody awaits a stream that is gone
        }
        finish_feeding(nullptr);
        drop_input(); // feeding has finished: nothing reads the input any more
        std::lock_guard lock(mutex_);
        for (const std::unique_ptr<Slot>& slot : slots_) {
            if (slot->done) { // settled: no worker writes to it any more
                slot->values.clear();
                slot->errors.clear();
            }
        }
    }

    void cut(std::exception_ptr reason) noexcept override { finish_feeding(std::move(reason)); }
    Job& job() noexcept override { return *this; }

    void cancel_chunk(const Chunk& chunk, std::exception_ptr reason) noexcept override {
        for (std::size_t offset = 0; offset < chunk.count; ++offset) {
            store_error(chunk, offset, reason);
        }
        // Dropped before the consumer can see the chunk, so the consumer holds the last
        // references (see settle_answer in src/process/process_backend.cpp).
        reason = nullptr;
        clear_arguments(chunk);
        chunk_settled(chunk);
    }

    /// What one item's result storage takes.
    static constexpr std::size_t bytes_per_item =
        sizeof(std::optional<T>) + sizeof(std::exception_ptr);

  protected:
    /// Allocates nothing for the window yet: slots are made as the input fills them.
    StreamJob(ChunkSink& sink, Order order, std::size_t chunksize, StreamWindow window)
        : sink_(&sink), order_(order), chunksize_(chunksize), window_rule_(window),
          window_(window.initial) {}

    /// Every chunk of this job is one of its slots: made (not const) by new_slot, handed to the
    /// backends as a Chunk and back as a const one.
    static Slot& slot_of(const Chunk& chunk) noexcept {
        return const_cast<Slot&>(static_cast<const Slot&>(chunk));
    }

    /// A new, empty slot (of the derived job's type, which adds the items' arguments).
    virtual std::unique_ptr<Slot> new_slot() = 0;
    /// Reads the next input item into the slot's arguments, after those it holds; false at the
    /// end of the input. Exceptions from the input propagate.
    virtual bool read_item(Slot& slot) = 0;
    virtual void clear_arguments(const Chunk& chunk) noexcept = 0;
    /// Destroys the input (a moved-in range); consumer thread, after feeding has finished.
    virtual void drop_input() noexcept = 0;

    bool wanted() const noexcept override { return !abandoned_.load(std::memory_order_relaxed); }

    void store_value(const Chunk& chunk, std::size_t offset, T&& value) {
        slot_of(chunk).values[offset].emplace(std::move(value));
    }
    /// An item's error; for a stream of Outcomes (imap_outcomes) it becomes the item's value.
    void store_error(const Chunk& chunk, std::size_t offset, std::exception_ptr error) noexcept {
        Slot& slot = slot_of(chunk);
        if constexpr (is_outcome<T>) {
            slot.values[offset].emplace(std::move(error));
        } else {
            slot.errors[offset] = std::move(error);
        }
    }

    /// Called by the worker after the chunk's items are stored.
    void chunk_settled(const Chunk& chunk) noexcept {
        Slot& slot = slot_of(chunk);
        Function<void()> observer;
        {
            std::lock_guard lock(mutex_);
            slot.done = true;
            --in_flight_;
            if (order_ == Order::completion) {
                completed_.push(&slot);
            }
            observer = take_observer_if_due_locked();
        }
        events_.fetch_add(1, std::memory_order_release);
        changed_.notify_one();
        if (observer) {
            observer(); // while the chunk's reference keeps this alive
        }
        release(); // the chunk's reference; must be the last use of this
    }

  private:
    Fetched take_current_item(std::optional<T>* value) {
        const std::size_t offset = current_offset_++;
        if (std::exception_ptr error = std::exchange(current_->errors[offset], nullptr)) {
            std::rethrow_exception(error);
        }
        value->emplace(std::move(*current_->values[offset]));
        current_->values[offset].reset(); // the pool keeps no copy of a result it handed over
        return Fetched::item;
    }

    /// Consumer thread: the slot's results have all been taken (or dropped).
    void free_slot(Slot& slot) {
        {
            std::lock_guard lock(mutex_);
            slot.done = false;
        }
        slot.values.clear(); // keeps the capacity for the slot's next chunk
        slot.errors.clear();
        slot.count = 0;
        free_.push_back(&slot);
    }

    /// A free slot, or a new one; consumer thread only.
    Slot& take_slot() {
        if (!free_.empty()) {
            Slot* slot = free_.back(); // the one used last: its storage is the warmest
            free_.pop_back();
            return *slot;
        }
        std::unique_ptr<Slot> slot = new_slot();
        slot->job = this;
        if (free_.capacity() <= slots_.size()) {
            free_.reserve(2 * (slots_.size() + 1)); // so that freeing a slot never allocates
        }
        std::lock_guard lock(mutex_); // abandon() walks the slots under it
        slots_.push_back(std::move(slot));
        return *slots_.back();
    }

    /// Caller holds mutex_: the next result in the stream's order has settled.
    bool next_ready_locked() const noexcept {
        if (order_ == Order::input) {
            return !in_order_.empty() && in_order_.front()->done;
        }
        return !completed_.empty();
    }

    /// Caller holds mutex_: the observe_next observer, once fetch() would not wait.
    Function<void()> take_observer_if_due_locked() noexcept {
        if (next_observer_ && (next_ready_locked() || idle())) {
            return std::move(next_observer_);
        }
        return {};
    }

    /// Caller holds mutex_: nothing in flight or waiting, and no more input will come.
    bool idle() const noexcept {
        return feeding_finished_ && in_flight_ == 0 && completed_.empty() && in_order_.empty();
    }

  public:
    /// Tops up the window from the input; consumer thread only. In batches: once half the
    /// window is free (or no chunk waits for a worker), every free slot is filled and the chunks go
    /// to the pool in one submit, so that the pool's hand-over costs (a lock, a wake-up of its
    /// I/O thread, a message to a worker) are paid once per batch, not once per chunk.
    void fill_window() {
        std::size_t room = 0;
        {
            std::lock_guard lock(mutex_);
            if (feeding_finished_) {
                return;
            }
            const std::size_t used = slots_.size() - free_.size();
            room = window_ > used ? window_ - used : 0;
            if (room == 0 || (in_flight_ > window_rule_.workers && room < (window_ + 1) / 2)) {
                return;
            }
        }
        bool input_ended = false;
        std::exception_ptr input_error;
        while (batch_.size() < room && !input_ended && !input_error) {
            Slot& slot = take_slot();
            slot.first = items_read_;
            slot.count = 0;
            slot.retries = 0;
            try {
                while (slot.count < chunksize_ && read_item(slot)) {
                    ++slot.count;
                    ++items_read_;
                }
                input_ended = slot.count < chunksize_;
            } catch (...) {
                input_error = std::current_exception(); // the items read before it still run
            }
            if (slot.count != 0) {
                try {
                    slot.values.resize(slot.count);
                    slot.errors.resize(slot.count);
                } catch (...) {
                    // No room for the results: the chunk cannot run, and the stream ends here.
                    if (!input_error) {
                        input_error = std::current_exception();
                    }
                    clear_arguments(slot);
                    slot.count = 0;
                }
            }
            if (slot.count == 0) {
                free_slot(slot);
                break;
            }
            batch_.push_back(&slot);
        }
        const bool submitted = batch_.empty() || submit();
        batch_.clear();
        if (submitted && (input_error || input_ended)) {
            finish_feeding(input_error);
        }
    }

  private:
    /// Hands the chunks of batch_ to the pool; on refusal (the pool stopped) their slots are
    /// freed and feeding ends with an error for the consumer.
    bool submit() {
        note_window_use();
        std::lock_guard feed_lock(feed_mutex_);
        if (sink_ != nullptr) {
            {
                std::lock_guard lock(mutex_);
                in_flight_ += batch_.size();
            }
            if (sink_->submit(ChunkBatch(batch_.data(), batch_.size()))) {
                if (order_ == Order::input) {
                    std::lock_guard lock(mutex_);
                    for (Chunk* chunk : batch_) {
                        in_order_.push(&slot_of(*chunk));
                    }
                }
                return true;
            }
            std::lock_guard lock(mutex_);
            in_flight_ -= batch_.size();
        }
        for (Chunk* chunk : batch_) {
            clear_arguments(*chunk);
            free_slot(slot_of(*chunk));
        }
        // No effect when a cut already finished feeding with its own reason.
        finish_feeding_locked(std::make_exception_ptr(
            PoolNotRunning("mproc: the pool stopped before imap's input was fully read")));
        return false;
    }

    /// Before each batch: grows the window when the chunks handed over since the last batch
    /// came back fast (StreamWindow::next). Consumer thread only.
    void note_window_use() {
        if (window_ == window_rule_.limit) {
            return;
        }
        const auto now = Clock::now();
        if (last_batch_) {
            window_ = window_rule_.next(window_, now - *last_batch_, batch_.size());
        }
        last_batch_ = now;
    }

    void finish_feeding(std::exception_ptr reason) noexcept {
        std::lock_guard feed_lock(feed_mutex_);
        finish_feeding_locked(std::move(reason));
    }

    /// Caller holds feed_mutex_.
    void finish_feeding_locked(std::exception_ptr reason) noexcept {
        ChunkSink* sink = std::exchange(sink_, nullptr);
        Function<void()> observer;
        {
            std::lock_guard lock(mutex_);
            if (feeding_finished_) {
                return;
            }
            feeding_finished_ = true;
            terminal_error_ = std::move(reason);
            observer = take_observer_if_due_locked();
        }
        events_.fetch_add(1, std::memory_order_release);
        changed_.notify_one();
        if (observer) {
            observer();
        }
        if (sink != nullptr) {
            sink->feeder_finished(*this);
        }
    }

    // Protects sink_ against the pool going away (cut) while the consumer submits.
    std::mutex feed_mutex_;
    ChunkSink* sink_;

    const Order order_;
    const std::size_t chunksize_;
    const StreamWindow window_rule_;
    // Consumer-thread state: the window now (how many slots may be in use), the chunks being
    // handed over, the time the batch before them was (none before the first), the free slots
    // and how many items have been read.
    std::size_t window_;
    std::vector<Chunk*> batch_;
    std::optional<Clock::time_point> last_batch_;
    std::vector<Slot*> free_;
    std::size_t items_read_ = 0;

    // Guards the slot bookkeeping below; workers take it once per chunk.
    std::mutex mutex_;
    std::condition_variable changed_;
    std::atomic<std::size_t> events_{0}; // bumped by every change changed_ signals, for polling
    // Every slot made so far, no more than the largest window held at once; grown by the
    // consumer, under mutex_. On the heap, so that a slot in flight never moves.
    std::vector<std::unique_ptr<Slot>> slots_;
    std::size_t in_flight_ = 0;
    bool feeding_finished_ = false;
    std::exception_ptr terminal_error_;
    SlotQueue<Slot> in_order_;       // Order::input: submitted slots, oldest first
    SlotQueue<Slot> completed_;      // Order::completion: done slots, first done first
    Function<void()> next_observer_; // observe_next's, until due

    std::atomic<bool> abandoned_{false};
    // Consumer-thread state: the slot whose results are being taken, and the next one's offset.
    Slot* current_ = nullptr;
    std::size_t current_offset_ = 0;
};

} // namespace mproc::detail
