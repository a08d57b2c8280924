// SPDX-License-Identifier: MIT
#include "mproc/detail/wire/remote_exception.hpp"

#include <cxxabi.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <typeinfo>

#include "mproc/errors.hpp"

namespace mproc::detail {

namespace {

/// The exception types re-created as themselves. The numbers are the wire format: append only.
enum class ExceptionKind : std::uint8_t {
    other = 0, // becomes mproc::RemoteError
    exception = 1,
    runtime_error = 2,
    logic_error = 3,
    invalid_argument = 4,
    domain_error = 5,
    length_error = 6,
    out_of_range = 7,
    range_error = 8,
    overflow_error = 9,
    underflow_error = 10,
    bad_alloc = 11,
    mproc_error = 12,
};
constexpr std::uint8_t last_kind = 12;

/// Which kind `type` is exactly (a derived type is `other`: re-creating its base would lose
/// what the task meant by it).
ExceptionKind kind_of(const std::type_info& type) noexcept {
    struct Known {
        const std::type_info& type;
        ExceptionKind kind;
    };
    static const Known known[] = {
        {typeid(std::exception), ExceptionKind::exception},
        {typeid(std::runtime_error), ExceptionKind::runtime_error},
        {typeid(std::logic_error), ExceptionKind::logic_error},
        {typeid(std::invalid_argument), ExceptionKind::invalid_argument},
        {typeid(std::domain_error), ExceptionKind::domain_error},
        {typeid(std::length_error), ExceptionKind::length_error},
        {typeid(std::out_of_range), ExceptionKind::out_of_range},
        {typeid(std::range_error), ExceptionKind::range_error},
        {typeid(std::overflow_error), ExceptionKind::overflow_error},
        {typeid(std::underflow_error), ExceptionKind::underflow_error},
        {typeid(std::bad_alloc), ExceptionKind::bad_alloc},
        {typeid(mproc::Error), ExceptionKind::mproc_error},
    };
    for (const Known& entry : known) {
        if (entry.type == type) {
            return entry.kind;
        }
    }
    return ExceptionKind::other;
}

/// The readable name of a type ("my::ParseError", not "N2my10ParseErrorE").
std::string demangled_name(const std::type_info& type) {
    int status = 0;
    std::unique_ptr<char, decltype(&std::free)> name(
        abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), &std::free);
    return status == 0 && name != nullptr ? std::string(name.get()) : std::string(type.name());
}

/// The value of an exception that is not a std::exception, where it has an obvious text (a
/// string or a number, as in `throw "bad input"` or `throw 42`); else empty. Must be called
/// while the exception is being handled.
std::string describe_current_non_std_exception() {
    try {
        throw;
    } catch (const char* text) {
        return text != nullptr ? std::string(text) : std::string();
    } catch (const std::string& text) {
        return text;
    } catch (int value) {
        return std::to_string(value);
    } catch (long value) {
        return std::to_string(value);
    } catch (long long value) {
        return std::to_string(value);
    } catch (unsigned value) {
        return std::to_string(value);
    } catch (unsigned long value) {
        return std::to_string(value);
    } catch (unsigned long long value) {
        return std::to_string(value);
    } catch (double value) {
        return std::to_string(value);
    } catch (...) {
        return std::string(); // no text to give: the type name is all there is
    }
}

thread_local const std::string* current_origin = nullptr;

/// `error` as decoded: itself, or, while a RemoteOriginScope names where it came from, itself
/// with that place nested (its type and what() unchanged).
template <class E>
std::exception_ptr recreated(E error) {
    if (current_origin == nullptr) {
        return std::make_exception_ptr(std::move(error));
    }
    try {
        throw mproc::Error("mproc: raised on " + *current_origin);
    } catch (...) {
        try {
            std::throw_with_nested(std::move(error));
        } catch (...) {
            return std::current_exception();
        }
    }
}

} // namespace

RemoteOriginScope::RemoteOriginScope(const std::string& where) noexcept { current_origin = &where; }
RemoteOriginScope::~RemoteOriginScope() { current_origin = nullptr; }

void encode_remote_error(WireWriter& out, const RemoteError& error) {
    out.write(static_cast<std::uint8_t>(ExceptionKind::other));
    out.write_string(error.type_name());
    out.write_string(error.message());
}

void encode_exception(WireWriter& out, std::exception_ptr error) {
    if (error == nullptr) {
        throw std::invalid_argument("mproc: encode_exception needs an exception (got none)");
    }
    ExceptionKind kind = ExceptionKind::other;
    std::string type_name;
    std::string message;
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& caught) {
        kind = kind_of(typeid(caught));
        type_name = demangled_name(typeid(caught));
        message = caught.what();
    } catch (...) {
        const std::type_info* type = abi::__cxa_current_exception_type();
        type_name = type != nullptr ? demangled_name(*type) : std::string("unknown exception");
        message = describe_current_non_std_exception();
    }
    out.write(static_cast<std::uint8_t>(kind));
    out.write_string(type_name);
    out.write_string(message);
}

std::exception_ptr decode_exception(WireReader& in, long worker_pid,
                                    unsigned long long task_index) {
    const auto kind_number = in.read<std::uint8_t>();
    if (kind_number > last_kind) {
        throw WireError("mproc: unknown exception kind " + std::to_string(kind_number));
    }
    std::string type_name = in.read_string();
    std::string message = in.read_string();
    switch (static_cast<ExceptionKind>(kind_number)) {
    case ExceptionKind::exception:
        // std::exception cannot carry a message; its what() is the library's fixed text.
        return recreated(std::exception());
    case ExceptionKind::runtime_error:
        return recreated(std::runtime_error(message));
    case ExceptionKind::logic_error:
        return recreated(std::logic_error(message));
    case ExceptionKind::invalid_argument:
        return recreated(std::invalid_argument(message));
    case ExceptionKind::domain_error:
        return recreated(std::domain_error(message));
    case ExceptionKind::length_error:
        return recreated(std::length_error(message));
    case ExceptionKind::out_of_range:
        return recreated(std::out_of_range(message));
    case ExceptionKind::range_error:
        return recreated(std::range_error(message));
    case ExceptionKind::overflow_error:
        return recreated(std::overflow_error(message));
    case ExceptionKind::underflow_error:
        return recreated(std::underflow_error(message));
    case ExceptionKind::bad_alloc:
        return recreated(std::bad_alloc());
    case ExceptionKind::mproc_error:
        return recreated(mproc::Error(message));
    case ExceptionKind::other:
        break;
    }
    return std::make_exception_ptr(
        RemoteError(std::move(type_name), std::move(message), worker_pid, task_index,
                    current_origin != nullptr ? *current_origin : std::string()));
}

} // namespace mproc::detail
