#pragma once
// imap/imap_unordered: results streamed to one consumer while the input is read lazily.
//
// The consumer's thread does the feeding: each time it asks for a result it first tops up the
// window (reads input items, forms chunks, submits them) until `window` chunks are in flight or
// unconsumed. So the input is only ever touched by the consumer's thread (a user generator
// needs no lock), an exception from the input surfaces in order, and a slow consumer stops the
// input from being read (backpressure): memory stays bounded by window * chunksize items. The
// window may grow while chunks come back fast, up to a fixed limit (stream_window.hpp).
//
// Chunk slots form a ring: a slot is free, in flight, done (results waiting), or being
// consumed. `Chunk::first` is the slot's offset in the item arrays, not a position in the input.

#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <vector>

#include "mproc/detail/deadline.hpp"
#include "mproc/detail/job.hpp"
#include "mproc/detail/spin_wait.hpp"
#include "mproc/detail/stream_window.hpp"
#include "mproc/errors.hpp"
#include "mproc/outcome.hpp"

namespace mproc::detail {

enum class Order { input, completion };

/// Fixed-capacity FIFO of chunk-slot numbers.
class SlotQueue {
  public:
    explicit SlotQueue(std::size_t capacity) : ring_(capacity) {}
    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }
    std::size_t front() const noexcept { return ring_[head_]; }
    void push(std::size_t slot) noexcept {
        ring_[(head_ + size_) % ring_.size()] = slot;
        ++size_;
    }
    std::size_t pop() noexcept {
        const std::size_t slot = ring_[head_];
        head_ = (head_ + 1) % ring_.size();
        --size_;
        return slot;
    }

  private:
    std::vector<std::size_t> ring_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

/// The consumer-facing half, independent of the function and the input type.
template <class T>
class StreamJob : public Job, public Feeder {
  public:
    enum class Fetched { item, end, timeout };

    /// Waits for the next result (in input or completion order). On `item`, `*value` holds it,
    /// or the item's exception is thrown; after the input and every chunk are exhausted, a
    /// pending input/cut error is thrown once, then `end` is returned for ever.
    Fetched fetch(Clock::time_point deadline, std::optional<T>* value) {
        for (;;) {
            if (current_slot_ != no_slot && current_offset_ < chunks_[current_slot_].count) {
                return take_current_item(value);
            }
            if (current_slot_ != no_slot) {
                free_slot(current_slot_);
                current_slot_ = no_slot;
            }
            fill_window();
            const std::size_t events_seen = events_.load(std::memory_order_acquire);
            std::unique_lock lock(mutex_);
            auto next_ready = [&] {
                if (order_ == Order::input) {
                    return !in_order_.empty() && done_[in_order_.front()];
                }
                return !completed_.empty();
            };
            if (!next_ready() && !idle() && deadline - Clock::now() > waiter_spin_budget) {
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
                current_slot_ = order_ == Order::input ? in_order_.pop() : completed_.pop();
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

    /// The consumer's handle went away: chunks not started are skipped, results are dropped.
    /// What is not in flight (the input, results already settled) is destroyed here, on the
    /// consumer's thread: a worker may hold the last reference to the job a moment longer.
    void abandon() noexcept {
        abandoned_.store(true, std::memory_order_relaxed);
        finish_feeding(nullptr);
        drop_input(); // feeding has finished: nothing reads the input any more
        std::lock_guard lock(mutex_);
        for (std::size_t slot = 0; slot < chunks_.size(); ++slot) {
            if (done_[slot]) { // settled: no worker writes these positions any more
                for (std::size_t i = chunks_[slot].first;
                     i < chunks_[slot].first + chunks_[slot].count; ++i) {
                    values_[i].reset();
                    errors_[i] = nullptr;
                }
            }
        }
    }

    void cut(std::exception_ptr reason) noexcept override { finish_feeding(std::move(reason)); }
    Job& job() noexcept override { return *this; }

    void cancel_chunk(const Chunk& chunk, std::exception_ptr reason) noexcept override {
        for (std::size_t i = chunk.first; i < chunk.first + chunk.count; ++i) {
            store_error(i, reason);
        }
        // Dropped before the consumer can see the chunk, so the consumer holds the last
        // references (see ProcessBackend's handle_worker).
        reason = nullptr;
        clear_arguments(chunk);
        chunk_settled(chunk);
    }

    /// What one item's result slots take.
    static constexpr std::size_t bytes_per_item =
        sizeof(std::optional<T>) + sizeof(std::exception_ptr);

  protected:
    /// Slots for the largest window, `window.limit` chunks, from the start.
    StreamJob(ChunkSink& sink, Order order, std::size_t chunksize, StreamWindow window)
        : sink_(&sink), order_(order), chunksize_(chunksize), window_rule_(window),
          window_(window.initial), chunks_(window.limit), first_input_index_(window.limit),
          done_(window.limit, false), values_(window.limit * chunksize),
          errors_(window.limit * chunksize), free_(window.limit), in_order_(window.limit),
          completed_(window.limit) {
        for (std::size_t slot = 0; slot < window.limit; ++slot) {
            chunks_[slot] = Chunk{this, slot * chunksize, 0};
            free_.push(slot);
        }
        batch_.reserve(window.limit);
    }

    /// Reads the next input item into argument position `position`; false at the end of the
    /// input. Exceptions from the input propagate.
    virtual bool read_item(std::size_t position) = 0;
    virtual void clear_arguments(const Chunk& chunk) noexcept = 0;
    /// Destroys the input (a moved-in range); consumer thread, after feeding has finished.
    virtual void drop_input() noexcept = 0;

    bool wanted() const noexcept override { return !abandoned_.load(std::memory_order_relaxed); }

    /// The input index (0-based position in the caller's input) of the item at `position`.
    std::size_t input_index(std::size_t position) const noexcept {
        const std::size_t slot = position / chunksize_;
        return first_input_index_[slot] + (position - chunks_[slot].first);
    }

    void store_value(std::size_t position, T&& value) {
        values_[position].emplace(std::move(value));
    }
    /// An item's error; for a stream of Outcomes (imap_outcomes) it becomes the item's value.
    void store_error(std::size_t position, std::exception_ptr error) noexcept {
        if constexpr (is_outcome<T>) {
            values_[position].emplace(std::move(error));
        } else {
            errors_[position] = std::move(error);
        }
    }

    std::size_t task_index(const Chunk& chunk, std::size_t offset) const noexcept override {
        return input_index(chunk.first + offset);
    }

    /// Called by the worker after the chunk's items are stored.
    void chunk_settled(const Chunk& chunk) noexcept {
        const std::size_t slot = chunk.first / chunksize_;
        {
            std::lock_guard lock(mutex_);
            done_[slot] = true;
            --in_flight_;
            if (order_ == Order::completion) {
                completed_.push(slot);
            }
        }
        events_.fetch_add(1, std::memory_order_release);
        changed_.notify_one();
        release(); // the chunk's reference; must be the last use of this
    }

  private:
    static constexpr std::size_t no_slot = static_cast<std::size_t>(-1);

    Fetched take_current_item(std::optional<T>* value) {
        const std::size_t position = chunks_[current_slot_].first + current_offset_++;
        if (std::exception_ptr error = std::exchange(errors_[position], nullptr)) {
            std::rethrow_exception(error);
        }
        value->emplace(std::move(*values_[position]));
        values_[position].reset(); // the pool keeps no copy of a result it handed over
        return Fetched::item;
    }

    void free_slot(std::size_t slot) {
        std::lock_guard lock(mutex_);
        for (std::size_t i = chunks_[slot].first; i < chunks_[slot].first + chunks_[slot].count;
             ++i) {
            values_[i].reset();
            errors_[i] = nullptr;
        }
        done_[slot] = false;
        chunks_[slot].count = 0;
        free_.push(slot);
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
        {
            std::lock_guard lock(mutex_);
            if (feeding_finished_) {
                return;
            }
            const std::size_t used = chunks_.size() - free_.size();
            const std::size_t room = window_ > used ? window_ - used : 0;
            if (room == 0 || (in_flight_ > window_rule_.workers && room < (window_ + 1) / 2)) {
                return;
            }
            for (std::size_t i = 0; i < room; ++i) {
                batch_.push_back(free_.pop());
            }
        }
        std::size_t filled = 0;
        bool input_ended = false;
        std::exception_ptr input_error;
        try {
            for (; filled < batch_.size() && !input_ended; ++filled) {
                Chunk& chunk = chunks_[batch_[filled]];
                chunk.count = 0;
                chunk.retries = 0;
                first_input_index_[batch_[filled]] = items_read_;
                while (chunk.count < chunksize_ && read_item(chunk.first + chunk.count)) {
                    ++chunk.count;
                    ++items_read_;
                }
                input_ended = chunk.count < chunksize_;
                if (chunk.count == 0) {
                    break;
                }
            }
        } catch (...) {
            input_error = std::current_exception();
            if (chunks_[batch_[filled]].count > 0) {
                ++filled; // the items read before the error still run
            }
        }
        {
            std::lock_guard lock(mutex_);
            for (std::size_t i = filled; i < batch_.size(); ++i) {
                free_.push(batch_[i]);
            }
        }
        batch_.resize(filled);
        const bool submitted = batch_.empty() || submit();
        batch_.clear();
        if (submitted && (input_error || input_ended)) {
            finish_feeding(input_error);
        }
    }

  private:
    /// Hands the chunks of batch_ to the pool; on refusal (the pool stopped) their slots are
    /// returned and feeding ends with an error for the consumer.
    bool submit() {
        note_window_use();
        std::lock_guard feed_lock(feed_mutex_);
        if (sink_ != nullptr) {
            {
                std::lock_guard lock(mutex_);
                in_flight_ += batch_.size();
            }
            if (sink_->submit(ChunkBatch(chunks_.data(), batch_.data(), batch_.size()))) {
                if (order_ == Order::input) {
                    std::lock_guard lock(mutex_);
                    for (const std::size_t slot : batch_) {
                        in_order_.push(slot);
                    }
                }
                return true;
            }
            std::lock_guard lock(mutex_);
            in_flight_ -= batch_.size();
        }
        for (const std::size_t slot : batch_) {
            clear_arguments(chunks_[slot]);
        }
        {
            std::lock_guard lock(mutex_);
            for (const std::size_t slot : batch_) {
                chunks_[slot].count = 0;
                free_.push(slot);
            }
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
        {
            std::lock_guard lock(mutex_);
            if (feeding_finished_) {
                return;
            }
            feeding_finished_ = true;
            terminal_error_ = std::move(reason);
        }
        events_.fetch_add(1, std::memory_order_release);
        changed_.notify_one();
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
    // Consumer-thread state: the window now (how many slots may be in use), and the batch
    // being filled with the time the one before it was handed over (none before the first).
    std::size_t window_;
    std::vector<std::size_t> batch_;
    std::optional<Clock::time_point> last_batch_;
    std::vector<Chunk> chunks_;                  // one per slot, for the largest window
    std::vector<std::size_t> first_input_index_; // per slot; written by the feeder before submit
    std::size_t items_read_ = 0;                 // consumer thread only

    // Guards the slot bookkeeping below; workers take it once per chunk.
    std::mutex mutex_;
    std::condition_variable changed_;
    std::atomic<std::size_t> events_{0}; // bumped by every change changed_ signals, for polling
    std::vector<bool> done_;
    std::size_t in_flight_ = 0;
    bool feeding_finished_ = false;
    std::exception_ptr terminal_error_;

    // Item results, by position; a worker writes a chunk's positions before settling it, the
    // consumer reads them after seeing it done.
    std::vector<std::optional<T>> values_;
    std::vector<std::exception_ptr> errors_;

    SlotQueue free_;
    SlotQueue in_order_;  // Order::input: submitted slots, oldest first
    SlotQueue completed_; // Order::completion: done slots, first done first

    std::atomic<bool> abandoned_{false};
    // Consumer-thread state.
    std::size_t current_slot_ = no_slot;
    std::size_t current_offset_ = 0;
};

} // namespace mproc::detail
