// SPDX-License-Identifier: MIT
// mproc::resumable on every pool class: a journaled map computes each item once across runs,
// reads back what a previous run finished, refuses a journal of another function or of changed
// input, survives a torn tail, and leaves failed items to be tried again.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <mproc/resumable.hpp>

#include "conformance.hpp"

namespace {

using namespace conformance;

template <class Pool>
class ResumableTest : public PoolTest {
  protected:
    ResumableTest() {
        // Rank 0 of an MPI job and a plain run share /tmp: a name of this process's own.
        path_ = std::filesystem::temp_directory_path() /
                ("mproc-resumable-" + std::to_string(getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".journal");
        std::filesystem::remove(path_);
    }
    ~ResumableTest() override { std::filesystem::remove(path_); }

    std::filesystem::path path_;
};
TYPED_TEST_SUITE(ResumableTest, PoolTypes);

std::vector<int> numbers(int n) {
    std::vector<int> xs(static_cast<std::size_t>(n));
    std::iota(xs.begin(), xs.end(), 0);
    return xs;
}

std::vector<int> squares(int n) {
    std::vector<int> ys;
    for (int x = 0; x < n; ++x) {
        ys.push_back(x * x);
    }
    return ys;
}

int cube(int x) { return x * x * x; }

/// x * x as a string.
std::string square_text(int x) { return std::to_string(x * x); }

/// An item that fails while its file exists: the same input fails in one run and not the next,
/// on every pool class (ranks and spawned workers see the file too).
using Flaky = std::pair<int, std::string>;
std::string square_unless_marked(const Flaky& item) {
    if (item.first % 10 == 0 && std::filesystem::exists(item.second)) {
        throw std::runtime_error("bad item " + std::to_string(item.first));
    }
    return square_text(item.first);
}

TYPED_TEST(ResumableTest, SecondRunReadsEveryResultBackAndComputesNothing) {
    TypeParam pool(2);
    auto resumable = mproc::resumable(pool, this->path_);
    EXPECT_EQ(resumable.map(square, numbers(300)), squares(300));
    EXPECT_EQ(resumable.computed(), 300u);
    EXPECT_EQ(resumable.resumed(), 0u);

    auto again = mproc::resumable(pool, this->path_);
    EXPECT_EQ(again.map(square, numbers(300), 7), squares(300)); // another chunksize: same items
    EXPECT_EQ(again.computed(), 0u);
    EXPECT_EQ(again.resumed(), 300u);
}

TYPED_TEST(ResumableTest, AnInterruptedRunIsFinishedByTheNext) {
    TypeParam pool(2);
    std::size_t taken = 0;
    {
        auto stream = mproc::resumable(pool, this->path_).imap(square, numbers(200), 5);
        for (int y : stream) {
            EXPECT_EQ(y, static_cast<int>(taken * taken));
            if (++taken == 60) {
                break; // the stream ends here: what it delivered is journaled
            }
        }
    }
    auto resumable = mproc::resumable(pool, this->path_);
    EXPECT_EQ(resumable.map(square, numbers(200)), squares(200));
    EXPECT_GE(resumable.resumed(), 60u);
    EXPECT_EQ(resumable.resumed() + resumable.computed(), 200u);
    EXPECT_LT(resumable.computed(), 200u - 59u);
}

TYPED_TEST(ResumableTest, StreamsMergeJournaledAndComputedItemsInInputOrder) {
    TypeParam pool(2);
    {
        auto first = mproc::resumable(pool, this->path_).imap(square, numbers(50));
        for (int i = 0; i < 20; ++i) {
            ASSERT_EQ(first.next(), std::optional<int>(i * i));
        }
    }
    auto stream = mproc::resumable(pool, this->path_).imap_outcomes(square, numbers(50), 3);
    std::vector<int> ys;
    while (auto y = stream.next()) {
        ys.push_back(y->value());
    }
    EXPECT_EQ(ys, squares(50));
    EXPECT_GE(stream.resumed(), 20u);
    EXPECT_EQ(stream.resumed() + stream.computed(), 50u);
}

TYPED_TEST(ResumableTest, ALazyInputIsResumedAndItsErrorComesAfterTheItemsBeforeIt) {
    TypeParam pool(2);
    Generator all(0, 50);
    EXPECT_EQ(mproc::resumable(pool, this->path_).map(square, all), squares(50));
    Generator failing(0, 50, 40); // reading item 40 throws
    auto stream = mproc::resumable(pool, this->path_).imap(square, failing);
    std::vector<int> ys;
    EXPECT_THROW(
        {
            while (auto y = stream.next()) {
                ys.push_back(*y);
            }
        },
        std::out_of_range);
    EXPECT_EQ(ys, squares(40));
    EXPECT_EQ(stream.resumed(), 40u);
    EXPECT_EQ(stream.computed(), 0u);
}

TYPED_TEST(ResumableTest, FailedItemsAreNotJournaledAndRunAgain) {
    const std::string marker = this->path_.string() + ".fail";
    std::ofstream(marker).put('x');
    std::vector<Flaky> items;
    for (int x = 0; x < 40; ++x) {
        items.emplace_back(x, marker);
    }
    TypeParam pool(2);
    auto first = mproc::resumable(pool, this->path_);
    try {
        first.map(square_unless_marked, items);
        ADD_FAILURE() << "no failure thrown";
    } catch (const std::runtime_error& error) {
        EXPECT_EQ(std::string(error.what()), "bad item 0"); // the first in input order
    }
    auto outcomes = mproc::resumable(pool, this->path_).map_outcomes(square_unless_marked, items);
    ASSERT_EQ(outcomes.size(), 40u);
    for (int x = 0; x < 40; ++x) {
        EXPECT_EQ(outcomes[x].has_value(), x % 10 != 0) << x;
        if (outcomes[x]) {
            EXPECT_EQ(outcomes[x].value(), std::to_string(x * x));
        }
    }
    std::filesystem::remove(marker);
    auto last = mproc::resumable(pool, this->path_);
    const std::vector<std::string> texts = last.map(square_unless_marked, items);
    EXPECT_EQ(texts[30], "900");
    EXPECT_EQ(last.computed(), 4u); // only the four failed ones
    EXPECT_EQ(last.resumed(), 36u);
}

TYPED_TEST(ResumableTest, AJournalOfAnotherFunctionIsRefused) {
    TypeParam pool(2);
    mproc::resumable(pool, this->path_).map(square, numbers(10));
    try {
        mproc::resumable(pool, this->path_).map(cube, numbers(10));
        ADD_FAILURE() << "a journal of square() resumed a map of cube()";
    } catch (const mproc::Error& error) {
        EXPECT_NE(std::string(error.what()).find("another function"), std::string::npos)
            << error.what();
    }
    // Another result type of the same function's shape is refused too.
    EXPECT_THROW(mproc::resumable(pool, this->path_).map(square_text, numbers(10)), mproc::Error);
    // Named versions: a journal is bound to its version.
    const auto v1 = this->path_.string() + ".v1";
    std::filesystem::remove(v1);
    mproc::resumable(pool, v1, {.function_version = "1"}).map(square, numbers(10));
    auto same = mproc::resumable(pool, v1, {.function_version = "1"});
    EXPECT_EQ(same.map(square, numbers(10)), squares(10));
    EXPECT_EQ(same.computed(), 0u);
    EXPECT_THROW(mproc::resumable(pool, v1, {.function_version = "2"}).map(square, numbers(10)),
                 mproc::Error);
    std::filesystem::remove(v1);
}

TYPED_TEST(ResumableTest, AChangedInputItemIsRefusedNamingIt) {
    TypeParam pool(2);
    mproc::resumable(pool, this->path_).map(square, numbers(20));
    std::vector<int> changed = numbers(20);
    changed[13] = 1000;
    try {
        mproc::resumable(pool, this->path_).map(square, changed);
        ADD_FAILURE() << "a changed input was resumed";
    } catch (const mproc::Error& error) {
        EXPECT_NE(std::string(error.what()).find("input item 13 "), std::string::npos)
            << error.what();
    }
    // A longer input: the first 20 are read back, the rest computed.
    auto longer = mproc::resumable(pool, this->path_);
    EXPECT_EQ(longer.map(square, numbers(30)), squares(30));
    EXPECT_EQ(longer.resumed(), 20u);
    EXPECT_EQ(longer.computed(), 10u);
}

TYPED_TEST(ResumableTest, ATornTailIsCutOffAndItsItemsComputedAgain) {
    TypeParam pool(2);
    mproc::resumable(pool, this->path_).map(square_text, numbers(100));
    const auto size = std::filesystem::file_size(this->path_);
    std::filesystem::resize_file(this->path_, size - 5); // the last record, cut by a crash
    {
        std::ofstream garbage(this->path_, std::ios::app | std::ios::binary);
        garbage << "half a record";
        // And a record head claiming 2^61 bytes of payload: never read, never allocated.
        const std::uint64_t head[3] = {100, 0, std::uint64_t{1} << 61};
        garbage.write(reinterpret_cast<const char*>(head), sizeof head);
    }
    auto resumable = mproc::resumable(pool, this->path_);
    const std::vector<std::string> texts = resumable.map(square_text, numbers(100));
    EXPECT_EQ(texts[99], "9801");
    EXPECT_EQ(resumable.resumed(), 99u);
    EXPECT_EQ(resumable.computed(), 1u);
    auto whole = mproc::resumable(pool, this->path_); // the journal is whole again
    whole.map(square_text, numbers(100));
    EXPECT_EQ(whole.resumed(), 100u);
}

TYPED_TEST(ResumableTest, AFileThatIsNoJournalIsRefusedAndLeftAsItWas) {
    TypeParam pool(2);
    {
        std::ofstream file(this->path_);
        file << "precious data, not a journal\n";
    }
    EXPECT_THROW(mproc::resumable(pool, this->path_).map(square, numbers(5)), mproc::Error);
    std::ifstream file(this->path_);
    std::string line;
    std::getline(file, line);
    EXPECT_EQ(line, "precious data, not a journal");
}

TYPED_TEST(ResumableTest, OneCallAtATimePerJournal) {
    TypeParam pool(2);
    auto open = mproc::resumable(pool, this->path_).imap(square, numbers(100));
    EXPECT_THROW(mproc::resumable(pool, this->path_).map(square, numbers(100)), mproc::Error);
    std::vector<int> ys;
    for (int y : open) {
        ys.push_back(y);
    }
    EXPECT_EQ(ys, squares(100));
}

TYPED_TEST(ResumableTest, CallsFromManyThreadsWithJournalsOfTheirOwn) {
    TypeParam pool(2);
    std::vector<std::thread> threads;
    std::vector<std::vector<int>> results(4);
    for (std::size_t t = 0; t < results.size(); ++t) {
        threads.emplace_back([&, t] {
            const auto path = this->path_.string() + "." + std::to_string(t);
            std::filesystem::remove(path);
            results[t] = mproc::resumable(pool, path).map(square, numbers(200), 3);
            auto again = mproc::resumable(pool, path);
            again.map(square, numbers(200));
            EXPECT_EQ(again.resumed(), 200u);
            std::filesystem::remove(path);
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    for (const auto& result : results) {
        EXPECT_EQ(result, squares(200));
    }
}

TYPED_TEST(ResumableTest, AnEmptyInputGivesAnEmptyResult) {
    TypeParam pool(2);
    auto resumable = mproc::resumable(pool, this->path_);
    EXPECT_TRUE(resumable.map(never_called, std::vector<int>{}).empty());
    EXPECT_EQ(resumable.computed(), 0u);
}

TYPED_TEST(ResumableTest, AnUnwritableJournalThrowsBeforeAnythingRuns) {
    TypeParam pool(2);
    EXPECT_THROW(
        mproc::resumable(pool, "/nonexistent-directory/x.journal").map(never_called, numbers(5)),
        std::system_error);
}

} // namespace
