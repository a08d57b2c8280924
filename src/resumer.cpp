// SPDX-License-Identifier: MIT
#include "mproc/detail/resumer.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

namespace mproc::detail {

namespace {
thread_local Resumer* serving_resumer = nullptr;
}

struct Resumer::State {
    std::mutex mutex;
    std::condition_variable posted;
    std::deque<std::coroutine_handle<>> coroutines;
    bool stopping = false;
    std::thread thread;

    /// The thread: resumes coroutines until stopped and none is left.
    static void run(const std::shared_ptr<State>& self) {
        for (;;) {
            std::coroutine_handle<> coroutine;
            {
                std::unique_lock lock(self->mutex);
                self->posted.wait(lock,
                                  [&] { return self->stopping || !self->coroutines.empty(); });
                if (self->coroutines.empty()) {
                    return;
                }
                coroutine = self->coroutines.front();
                self->coroutines.pop_front();
            }
            coroutine.resume();
        }
    }
};

Resumer::Resumer() : state_(std::make_shared<State>()) {}

Resumer::~Resumer() { stop(); }

void Resumer::serve_this_thread() noexcept { serving_resumer = this; }

void Resumer::post(std::coroutine_handle<> coroutine) {
    {
        std::lock_guard lock(state_->mutex);
        if (!state_->stopping) {
            if (!state_->thread.joinable()) {
                state_->thread = std::thread(&State::run, state_);
            }
            state_->coroutines.push_back(coroutine);
            state_->posted.notify_one();
            return;
        }
    }
    coroutine.resume(); // stopped: nothing would resume it
}

void Resumer::stop() noexcept {
    std::thread thread;
    {
        std::lock_guard lock(state_->mutex);
        state_->stopping = true;
        thread = std::move(state_->thread);
        state_->posted.notify_one();
    }
    if (!thread.joinable()) {
        return;
    }
    if (thread.get_id() == std::this_thread::get_id()) {
        thread.detach(); // it holds the state, and ends once the coroutine running returns
    } else {
        thread.join();
    }
}

void resume_coroutine(std::coroutine_handle<> coroutine) {
    if (serving_resumer != nullptr) {
        serving_resumer->post(coroutine);
    } else {
        coroutine.resume();
    }
}

} // namespace mproc::detail
