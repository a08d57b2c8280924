// SPDX-License-Identifier: MIT
#pragma once
/// @file resumable.hpp
/// `mproc::resumable(pool, path)`: maps that survive losing the program running them. Each
/// finished item's result is appended to a journal file as it arrives; run the same map again
/// with the same journal and input, and the items already finished are read back, not computed.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <filesystem>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "mproc/basic_pool.hpp"
#include "mproc/detail/chunking.hpp"
#include "mproc/detail/code_address.hpp"
#include "mproc/detail/journal_file.hpp"
#include "mproc/detail/ranges.hpp"
#include "mproc/detail/wire/value_codec.hpp"
#include "mproc/outcome.hpp"
#include "mproc/result_stream.hpp"

namespace mproc {

/// How a resumable call names its function in the journal's fingerprint.
struct ResumeOptions {
    /// Empty (the default): the function is named by the build of the program that runs it
    /// (its GNU build id), because mproc cannot tell whether a rebuilt function still computes
    /// what it did: a journal written by another build is refused. Any other text names the
    /// function's version instead, across builds: give it to resume after rebuilding a program
    /// whose function is unchanged, and change it when the function changes.
    std::string function_version;
};

namespace detail {

template <class T>
struct OutcomeValue;
template <class T>
struct OutcomeValue<Outcome<T>> {
    using type = T;
};

/// The journal's fingerprint of a call: what it computes (the function, its item and result
/// types) but not its input, which is checked item by item.
template <class F, class Item, class R>
std::uint64_t journal_fingerprint(const F& f, const ResumeOptions& options) {
    std::uint64_t hash = 0;
    const auto add = [&hash](const void* data, std::size_t size) {
        hash = journal_hash(data, size, hash);
    };
    const auto add_text = [&add](std::string_view text) { add(text.data(), text.size()); };
    add_text(typeid(F).name());
    add_text(typeid(Item).name());
    add_text(typeid(R).name());
    if (!options.function_version.empty()) {
        add_text("version");
        add_text(options.function_version);
    } else if constexpr (std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>) {
        // The module (by build id) and offset: also tells apart functions of one signature.
        const CodeAddress code = code_address_of_function(f);
        add(&code.module_id, sizeof code.module_id);
        add(&code.offset, sizeof code.offset);
    } else {
        const std::uint64_t program = this_program_id();
        add(&program, sizeof program);
    }
    if constexpr (transportable_v<F> && !std::is_empty_v<F>) {
        WireWriter state; // a function object's state is part of what it computes
        encode_value(state, f);
        add(state.data(), state.size());
    }
    return hash;
}

/// What one resumable call shares between the input reader (run wherever the pool reads input)
/// and the consumer of its results: the journal, and the plan of the items read so far.
struct ResumeState {
    ResumeState(const std::filesystem::path& path, std::uint64_t fingerprint)
        : journal(path, fingerprint) {}

    /// An input item read: answered from the journal, or sent to the pool.
    struct Planned {
        std::uint64_t index;
        std::uint64_t item_hash;
        bool journaled;
    };

    JournalFile journal; // only the consumer appends and flushes
    std::mutex mutex;
    std::deque<Planned> plan; // in input order
    std::size_t resumed = 0;  // items answered from the journal
    std::size_t computed = 0; // results the pool delivered
    WireWriter item_bytes;    // the input reader's (one at a time): each item's encoding
};

/// The hash of `item`'s encoding, written into `scratch` (cleared first, kept by the caller so
/// that reading the input allocates nothing per item).
template <class Item>
std::uint64_t item_hash(const Item& item, WireWriter& scratch) {
    scratch.clear();
    encode_value(scratch, item);
    return journal_hash(scratch.data(), scratch.size());
}

/// The input of the pool call under a resumable call: the caller's input less the items the
/// journal holds, each of which is checked against its record (a changed item is refused) and
/// planned as journaled.
template <class Input>
class UnfinishedItems {
  public:
    using Range = std::remove_reference_t<Input>;
    using Base = iterator_t<Range>;
    using BaseSentinel = sentinel_t<Range>;
    using Item = std::remove_cvref_t<range_value_t<Range>>;

    UnfinishedItems(Input&& input, std::shared_ptr<ResumeState> state)
        : input_(std::forward<Input>(input)), state_(std::move(state)) {}

    class iterator {
      public:
        using value_type = Item;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        decltype(auto) operator*() const {
            settle();
            return *at_;
        }
        iterator& operator++() {
            settle();
            ++at_;
            ++index_;
            settled_ = false;
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) {
            it.settle();
            return it.at_ == it.end_;
        }

      private:
        friend class UnfinishedItems;
        iterator(Base at, BaseSentinel end, ResumeState* state)
            : at_(std::move(at)), end_(std::move(end)), state_(state) {}
        /// Moves past the journaled items from here on, planning each, and plans the item it
        /// stops at (the next one the pool gets). Lazily, at the first look at a position, so
        /// that an error reading the input (or a changed item) reaches the pool where it reads,
        /// as any input's error does, not where it starts.
        void settle() const {
            if (settled_) {
                return;
            }
            for (; !(at_ == end_); ++at_, ++index_) {
                const std::uint64_t hash = item_hash<Item>(*at_, state_->item_bytes);
                const JournalFile::Record* record = state_->journal.find(index_);
                if (record != nullptr && record->item_hash != hash) {
                    throw_changed_item(index_);
                }
                std::lock_guard lock(state_->mutex);
                state_->plan.push_back({index_, hash, record != nullptr});
                if (record == nullptr) {
                    break;
                }
            }
            settled_ = true;
        }

        // Mutable: settling happens in the const operations, the first to look at a position.
        mutable Base at_{};
        BaseSentinel end_{};
        ResumeState* state_ = nullptr;
        mutable std::uint64_t index_ = 0;
        mutable bool settled_ = false;
    };

    iterator begin() {
        return iterator(std::ranges::begin(get()), std::ranges::end(get()), state_.get());
    }
    std::default_sentinel_t end() const noexcept { return {}; }

  private:
    Range& get() noexcept { return input_; }
    std::conditional_t<std::is_lvalue_reference_v<Input>, Range&, Range> input_;
    std::shared_ptr<ResumeState> state_;
};

} // namespace detail

/// The results of a resumable `imap` in input order, journaled items and computed ones merged:
/// a single-pass input range like `mproc::ResultStream`. With `outcomes`, its items are
/// `mproc::Outcome<R>`; else an item's error is thrown where the item would be.
template <class R, bool outcomes>
class ResumedStream {
  public:
    /// The type of its items: `mproc::Outcome<R>` with `outcomes`, else `R`.
    using value_type = std::conditional_t<outcomes, Outcome<R>, R>;

    /// The next result in input order, or nothing at the end. Throws an item's error (without
    /// `outcomes`), the error of reading the input (after the results before it), and
    /// std::system_error if the journal cannot be written.
    std::optional<value_type> next() {
        std::optional<Outcome<R>> outcome = next_outcome();
        if (!outcome) {
            return std::nullopt;
        }
        if constexpr (outcomes) {
            return outcome;
        } else {
            return std::move(*outcome).value();
        }
    }

    /// Items read back from the journal so far.
    std::size_t resumed() const {
        std::lock_guard lock(state_->mutex);
        return state_->resumed;
    }
    /// Items the pool computed so far.
    std::size_t computed() const {
        std::lock_guard lock(state_->mutex);
        return state_->computed;
    }

    /// Writes the results not written yet and waits until they are on the disk (they are
    /// also written as they come, in batches, and when the stream ends).
    void flush() { state_->journal.flush(); }

    /// Input iterator over the stream. Each step takes the next result with `next()`, so an
    /// item's error (without `outcomes`) is thrown by `begin()` or `++it`, where `next()` would
    /// throw it.
    class iterator {
      public:
        /// What `std::input_iterator` asks of an iterator.
        ///@{
        using value_type = ResumedStream::value_type;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        value_type& operator*() const { return *current_; }
        iterator& operator++() {
            current_ = stream_->next();
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) {
            return !it.current_.has_value();
        }
        ///@}

      private:
        friend class ResumedStream;
        explicit iterator(ResumedStream* stream) : stream_(stream), current_(stream->next()) {}
        ResumedStream* stream_ = nullptr;
        mutable std::optional<value_type> current_;
    };
    /// Takes the first result (blocking) and returns an iterator to it. Call once: the stream
    /// is single-pass.
    iterator begin() { return iterator(this); }
    /// The end of the stream.
    std::default_sentinel_t end() const noexcept { return {}; }

    /// The stream over `computed`, the pool's results for the items `state` planned as
    /// computed (made by `Resumable`).
    ResumedStream(ResultStream<Outcome<R>> computed, std::shared_ptr<detail::ResumeState> state)
        : computed_(std::move(computed)), state_(std::move(state)) {}
    /// Movable, not copyable.
    ResumedStream(ResumedStream&&) noexcept = default;
    /// Writes out the results not written yet and closes the journal, so that the next call
    /// can open it at once (the pool may still be cancelling chunks of this one).
    ~ResumedStream() {
        if (state_) {
            state_->journal.close();
        }
    }

  private:
    std::optional<Outcome<R>> next_outcome() {
        while (ready_.empty()) {
            if (ended_) {
                if (input_error_) {
                    std::rethrow_exception(std::exchange(input_error_, nullptr));
                }
                return std::nullopt;
            }
            if (take_journaled_front()) {
                continue;
            }
            std::optional<Outcome<R>> result;
            try {
                result = computed_.next();
            } catch (...) {
                input_error_ = std::current_exception(); // reading the input, or the pool ended
                ended_ = true;
                take_journaled_tail();
                continue;
            }
            if (!result) {
                ended_ = true;
                state_->journal.flush(); // the end of the call: everything on the disk
                take_journaled_tail();
                continue;
            }
            take_computed(std::move(*result));
        }
        Outcome<R> front = std::move(ready_.front());
        ready_.pop_front();
        return front;
    }

    /// Moves the journaled items at the front of the plan to the ready results.
    bool take_journaled_front() {
        std::lock_guard lock(state_->mutex);
        return take_journaled_front_locked();
    }
    /// take_journaled_front() with state_->mutex held. True if it took any.
    bool take_journaled_front_locked() {
        bool took = false;
        while (!state_->plan.empty() && state_->plan.front().journaled) {
            take_journaled(state_->plan.front());
            state_->plan.pop_front();
            took = true;
        }
        return took;
    }
    /// At the end of the computed results: every item left in the plan is journaled.
    void take_journaled_tail() {
        std::lock_guard lock(state_->mutex);
        for (const auto& planned : state_->plan) {
            if (planned.journaled) {
                take_journaled(planned);
            }
        }
        state_->plan.clear();
    }
    void take_journaled(const detail::ResumeState::Planned& planned) {
        const auto* record = state_->journal.find(planned.index);
        detail::WireReader reader(record->payload.data(), record->payload.size());
        ready_.emplace_back(detail::decode_value<R>(reader));
        ++state_->resumed;
    }
    /// A computed result is the first computed item of the plan (the pool's imap keeps input
    /// order); the journaled items before it come first.
    void take_computed(Outcome<R> result) {
        detail::ResumeState::Planned planned{};
        {
            std::lock_guard lock(state_->mutex);
            take_journaled_front_locked();
            planned = state_->plan.front();
            state_->plan.pop_front();
            ++state_->computed;
        }
        if (result.has_value()) { // a failed item is not journaled: a rerun tries it again
            writer_.clear();
            detail::encode_value(writer_, result.value());
            state_->journal.append(planned.index, planned.item_hash,
                                   {writer_.data(), writer_.size()});
        }
        ready_.push_back(std::move(result));
    }

    ResultStream<Outcome<R>> computed_;
    std::shared_ptr<detail::ResumeState> state_;
    std::deque<Outcome<R>> ready_;
    std::exception_ptr input_error_;
    bool ended_ = false;
    detail::WireWriter writer_;
};

/// A pool's map calls, journaled in one file (see `mproc::resumable`).
template <class Pool>
class Resumable {
  public:
    /// The calls of `pool` (which must outlive this object) journaled at `journal`; the file is
    /// opened by each call (see `mproc::resumable`).
    Resumable(Pool& pool, std::filesystem::path journal, ResumeOptions options = {})
        : pool_(pool), path_(std::move(journal)), options_(std::move(options)) {}

    /// `pool.imap_outcomes(f, input, chunksize, buffersize)`, resumed from the journal: the
    /// items it holds are read back (each checked against the input item it was computed
    /// from), the rest computed and appended as their results arrive. Results in input order.
    /// Opening the journal throws as described at `mproc::resumable`.
    template <class F, detail::input_range Input>
    auto imap_outcomes(F&& f, Input&& input, std::ptrdiff_t chunksize = 1,
                       std::optional<std::ptrdiff_t> buffersize = std::nullopt) {
        return start<true>(std::forward<F>(f), std::forward<Input>(input), chunksize, buffersize);
    }
    /// As `imap_outcomes`, with `imap`'s items: an item's error is thrown where it would be.
    template <class F, detail::input_range Input>
    auto imap(F&& f, Input&& input, std::ptrdiff_t chunksize = 1,
              std::optional<std::ptrdiff_t> buffersize = std::nullopt) {
        return start<false>(std::forward<F>(f), std::forward<Input>(input), chunksize, buffersize);
    }

    /// `pool.map_outcomes(f, input, chunksize)`, resumed from the journal (see imap_outcomes).
    template <class F, detail::input_range Input>
    auto map_outcomes(F&& f, Input&& input, Chunksize chunksize = auto_chunksize) {
        const std::ptrdiff_t size = map_chunksize(input, chunksize);
        auto stream = imap_outcomes(std::forward<F>(f), std::forward<Input>(input), size);
        std::vector<typename decltype(stream)::value_type> results;
        while (auto outcome = stream.next()) {
            results.push_back(std::move(*outcome));
        }
        record_counts(stream);
        return results;
    }

    /// `pool.map(f, input, chunksize)`, resumed from the journal: every item runs (or is read
    /// back), then the first failure, if any, is thrown; the results that arrived stay in the
    /// journal for the next run.
    template <class F, detail::input_range Input>
    auto map(F&& f, Input&& input, Chunksize chunksize = auto_chunksize) {
        auto outcomes = map_outcomes(std::forward<F>(f), std::forward<Input>(input), chunksize);
        using R = typename detail::OutcomeValue<typename decltype(outcomes)::value_type>::type;
        std::vector<R> results;
        results.reserve(outcomes.size());
        for (auto& outcome : outcomes) {
            if (!outcome.has_value()) {
                std::move(outcome).value(); // throws the first failure
            }
            results.push_back(std::move(outcome).value());
        }
        return results;
    }

    /// Of the last `map` or `map_outcomes`: the items read back from the journal.
    std::size_t resumed() const noexcept { return resumed_; }
    /// Of the last `map` or `map_outcomes`: the items the pool computed.
    std::size_t computed() const noexcept { return computed_; }

  private:
    template <bool outcomes, class F, class Input>
    auto start(F&& f, Input&& input, std::ptrdiff_t chunksize,
               std::optional<std::ptrdiff_t> buffersize) {
        using Callable = std::decay_t<F>;
        using Item = std::remove_cvref_t<detail::range_value_t<std::remove_reference_t<Input>>>;
        using Computed = decltype(pool_.imap_outcomes(
            f, std::declval<detail::UnfinishedItems<Input>>(), chunksize, buffersize));
        using R = typename detail::OutcomeValue<
            typename std::remove_cvref_t<Computed>::iterator::value_type>::type;
        detail::require_sendable_value<Item>();
        detail::require_sendable_value<R>();
        auto state = std::make_shared<detail::ResumeState>(
            path_, detail::journal_fingerprint<Callable, Item, R>(f, options_));
        auto computed = pool_.imap_outcomes(
            std::forward<F>(f), detail::UnfinishedItems<Input>(std::forward<Input>(input), state),
            chunksize, buffersize);
        return ResumedStream<R, outcomes>(std::move(computed), std::move(state));
    }

    template <class Input>
    std::ptrdiff_t map_chunksize(const Input& input, Chunksize chunksize) const {
        if (chunksize) {
            return static_cast<std::ptrdiff_t>(detail::checked_chunksize(*chunksize));
        }
        if constexpr (detail::sized_range<const Input>) {
            return static_cast<std::ptrdiff_t>(detail::larger(
                1, detail::auto_chunksize(std::ranges::size(input), pool_.workers())));
        } else {
            return 1;
        }
    }

    template <class Stream>
    void record_counts(const Stream& stream) {
        resumed_ = stream.resumed();
        computed_ = stream.computed();
    }

    Pool& pool_;
    std::filesystem::path path_;
    ResumeOptions options_;
    std::size_t resumed_ = 0;
    std::size_t computed_ = 0;
};

/// The map calls of `pool` with a journal at `journal`, which makes them resumable: run a
/// `map`, `map_outcomes`, `imap` or `imap_outcomes` through it, and every finished item's
/// result is appended to the journal (a file, created if missing) as it arrives; run the same
/// call again with the same journal and input after the program was killed, and the items it
/// holds are read back instead of computed. Works on every pool class.
///
/// The journal is bound to one function (see ResumeOptions) and checked item by item: a record
/// whose item differs from the input's item at its position is refused (mproc::Error naming the
/// item) rather than mixing results; so is a journal of another function, item or result type.
/// Items and results must be able to cross a process boundary (as for mproc::Pool), because
/// the journal holds their encodings. Failed items are not journaled: a rerun tries them again.
/// Records are written in batches (every 100 ms or 1 MiB) and synced to the disk (fdatasync):
/// a program killed loses at most its last batch, computed again on the next run; a record
/// torn by the kill is cut off. One call at a time per journal (another is refused).
///
/// Example:
/// @code
///   mproc::Pool pool;
///   auto resumable = mproc::resumable(pool, "simulations.journal");
///   std::vector<double> energies = resumable.map(simulate, parameters);
///   // killed half-way? Run it again: only the other half is simulated.
/// @endcode
template <class Pool>
Resumable<Pool> resumable(Pool& pool, std::filesystem::path journal, ResumeOptions options = {}) {
    return Resumable<Pool>(pool, std::move(journal), std::move(options));
}

} // namespace mproc
