// SPDX-License-Identifier: MIT
// A timeline written out: Chrome's trace event JSON (Perfetto, chrome://tracing) and an SVG
// picture that any browser shows without a trace viewer.

#include "mproc/timeline.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace mproc {
namespace {

using Kind = TimelineEvent::Kind;

const char* end_name(ChunkEnd end) {
    switch (end) {
    case ChunkEnd::finished:
        return "finished";
    case ChunkEnd::failed:
        return "failed";
    case ChunkEnd::lost:
        return "lost";
    case ChunkEnd::timed_out:
        return "timed_out";
    case ChunkEnd::cancelled:
        return "cancelled";
    }
    return "unknown";
}

const char* worker_event_name(Kind kind) {
    switch (kind) {
    case Kind::worker_started:
        return "worker started";
    case Kind::worker_retired:
        return "worker retired";
    case Kind::worker_lost:
        return "worker lost";
    case Kind::chunk:
        break;
    }
    return "chunk";
}

/// `value` with `decimals` digits after the point. std::to_chars rather than printf: a program
/// that called setlocale() must not get "1,5" in its JSON or SVG.
std::string fixed(double value, int decimals) {
    if (!std::isfinite(value)) {
        return "0";
    }
    char text[400];
    const auto [end, error] =
        std::to_chars(text, text + sizeof text, value, std::chars_format::fixed, decimals);
    return error == std::errc{} ? std::string(text, end) : std::string("0");
}

/// Nanoseconds as microseconds, the unit of Chrome's "ts" and "dur".
std::string micros(std::int64_t ns) { return fixed(static_cast<double>(ns) / 1000.0, 3); }

/// `text` with each malformed UTF-8 sequence replaced by U+FFFD: both JSON and XML readers
/// reject the whole file over one bad byte, and lane names come from host names and callers.
std::string valid_utf8(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<unsigned char>(text[i]);
        std::size_t length = 0;
        std::uint32_t least = 0; // the smallest code point of that length: no overlong forms
        if (lead < 0x80) {
            out += text[i++];
            continue;
        }
        if ((lead & 0xE0) == 0xC0) {
            length = 2;
            least = 0x80;
        } else if ((lead & 0xF0) == 0xE0) {
            length = 3;
            least = 0x800;
        } else if ((lead & 0xF8) == 0xF0) {
            length = 4;
            least = 0x10000;
        }
        bool good = length != 0 && i + length <= text.size();
        std::uint32_t code = length == 0 ? 0 : lead & (0x7Fu >> length);
        for (std::size_t k = 1; good && k < length; ++k) {
            const auto next = static_cast<unsigned char>(text[i + k]);
            good = (next & 0xC0) == 0x80;
            code = code << 6 | (next & 0x3Fu);
        }
        good = good && code >= least && code <= 0x10FFFF && (code < 0xD800 || code > 0xDFFF);
        if (good) {
            out.append(text.substr(i, length));
            i += length;
        } else {
            out += "\xEF\xBF\xBD";
            ++i;
        }
    }
    return out;
}

void append_json_string(std::string& out, std::string_view text) {
    out += '"';
    for (const char c : valid_utf8(text)) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (byte < 0x20) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(byte));
            out += escaped;
        } else {
            out += c;
        }
    }
    out += '"';
}

std::string json_string(std::string_view text) {
    std::string out;
    append_json_string(out, text);
    return out;
}

/// XML text or attribute content. Control characters other than tab and line breaks are not
/// allowed in XML 1.0 even as character references, so they become '?'.
std::string xml_text(std::string_view text) {
    std::string out;
    for (const char c : valid_utf8(text)) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&apos;";
            break;
        default:
            if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
                out += '?';
            } else {
                out += c;
            }
        }
    }
    return out;
}

/// `text` cut to at most `code_points`, never inside one, with "…" where it was cut.
std::string cut_text(const std::string& text, std::size_t code_points) {
    std::size_t seen = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const bool starts_code_point = (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
        if (starts_code_point && seen++ == code_points - 1) {
            // Room for one more: keep it only if it is the last.
            std::size_t rest = i + 1;
            while (rest < text.size() && (static_cast<unsigned char>(text[rest]) & 0xC0) == 0x80) {
                ++rest;
            }
            return rest == text.size() ? text : text.substr(0, i) + "\xE2\x80\xA6";
        }
    }
    return text;
}

/// Lanes named by the timeline, plus any an event names beyond them (a timeline put together
/// by hand may leave names out; its events must still show).
std::vector<std::string> lane_names(const Timeline& timeline) {
    std::vector<std::string> names = timeline.lanes;
    for (const TimelineEvent& event : timeline.events) {
        while (names.size() <= event.lane) {
            names.push_back("lane " + std::to_string(names.size()));
        }
    }
    return names;
}

/// Writes `content` to `path` in one go, throwing with the reason when it cannot.
void write_file(const std::filesystem::path& path, const std::string& content) {
    const auto fail = [&path](int error) {
        throw std::system_error(error != 0 ? error : EIO, std::generic_category(),
                                "mproc: cannot write " + path.string());
    };
    errno = 0;
    std::FILE* file = std::fopen(path.c_str(), "wb");
    if (file == nullptr) {
        fail(errno);
    }
    const std::size_t written = std::fwrite(content.data(), 1, content.size(), file);
    int error = written == content.size() ? 0 : (errno != 0 ? errno : EIO);
    // fclose flushes: a full disk may show only there.
    if (std::fclose(file) != 0 && error == 0) {
        error = errno != 0 ? errno : EIO;
    }
    if (error != 0) {
        fail(error);
    }
}

// --- Chrome trace ------------------------------------------------------------------------------

/// The fields every event of ours shares. Metadata events carry "ts":0 too: some readers want
/// a timestamp on every event.
std::string event_head(const char* ph, std::string_view name, std::uint64_t tid,
                       const std::string& ts) {
    return "{\"name\":" + json_string(name) + ",\"ph\":\"" + ph +
           "\",\"pid\":1,\"tid\":" + std::to_string(tid) + ",\"ts\":" + ts;
}

std::string chrome_trace(const Timeline& timeline) {
    std::vector<std::string> events;
    events.push_back(event_head("M", "process_name", 0, "0") +
                     ",\"args\":{\"name\":" + json_string(timeline.pool) + "}}");
    const std::vector<std::string> names = lane_names(timeline);
    for (std::size_t lane = 0; lane < names.size(); ++lane) {
        const std::uint64_t tid = lane + 1;
        events.push_back(event_head("M", "thread_name", tid, "0") +
                         ",\"args\":{\"name\":" + json_string(names[lane]) + "}}");
        // Without a sort index viewers order threads by name, and "worker 10" precedes
        // "worker 2".
        events.push_back(event_head("M", "thread_sort_index", tid, "0") +
                         ",\"args\":{\"sort_index\":" + std::to_string(lane) + "}}");
    }
    for (const TimelineEvent& event : timeline.events) {
        const std::uint64_t tid = std::uint64_t{event.lane} + 1;
        const std::string pid = std::to_string(event.pid);
        if (event.kind != Kind::chunk) {
            events.push_back(
                event_head("i", worker_event_name(event.kind), tid, micros(event.start_ns)) +
                ",\"s\":\"t\",\"args\":{\"worker_pid\":" + pid + "}}");
            continue;
        }
        const std::int64_t duration = std::max<std::int64_t>(0, event.end_ns - event.start_ns);
        const std::int64_t queued = std::max<std::int64_t>(0, event.start_ns - event.submitted_ns);
        events.push_back(
            event_head("X", "call " + std::to_string(event.call), tid, micros(event.start_ns)) +
            ",\"dur\":" + micros(duration) + ",\"cat\":\"chunk\",\"args\":{\"call\":" +
            std::to_string(event.call) + ",\"first\":" + std::to_string(event.first) +
            ",\"count\":" + std::to_string(event.count) + ",\"end\":\"" + end_name(event.end) +
            "\",\"worker_pid\":" + pid + ",\"submitted_us\":" + micros(event.submitted_ns) +
            ",\"queued_us\":" + micros(queued) + ",\"bytes_in\":" + std::to_string(event.bytes_in) +
            ",\"bytes_out\":" + std::to_string(event.bytes_out) + "}}");
    }
    // One event a line: the file stays readable and diffable.
    std::string out = "{\"traceEvents\":[\n";
    for (std::size_t i = 0; i < events.size(); ++i) {
        out += events[i];
        out += i + 1 < events.size() ? ",\n" : "\n";
    }
    out +=
        "],\n\"displayTimeUnit\":\"ms\",\n\"otherData\":{\"pool\":" + json_string(timeline.pool) +
        ",\"dropped\":" + std::to_string(timeline.dropped) + "}}\n";
    return out;
}

// --- SVG ---------------------------------------------------------------------------------------

constexpr double svg_width = 1000;
constexpr double label_x = 8;
constexpr std::size_t label_code_points = 40; // what fits the 260 px column at 11 px
constexpr double plot_left = 270;
constexpr double plot_right = 970; // room for half the last tick label
constexpr double lanes_top = 36;
constexpr double row_height = 22;
constexpr double bar_height = 14;
constexpr const char* failure_red = "#d62728";

/// Ten colours that stay apart from each other and from the red and grey that mark chunks that
/// did not finish.
constexpr std::array<const char*, 10> palette = {"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1",
                                                 "#edc948", "#76b7b2", "#ff9da7", "#9c755f",
                                                 "#17becf", "#bcbd22"};

/// A step of 1, 2, 2.5 or 5 times a power of ten that cuts `range` into 5 to 10 ticks.
double nice_step(double range) {
    const double magnitude = std::pow(10.0, std::floor(std::log10(range / 9)));
    for (const double factor : {1.0, 2.0, 2.5, 5.0}) {
        if (range / (factor * magnitude) <= 9) {
            return factor * magnitude;
        }
    }
    return 10 * magnitude;
}

/// The fewest decimals that show every multiple of `step` exactly.
int step_decimals(double step) {
    for (int decimals = 0; decimals < 9; ++decimals) {
        const double scaled = step * std::pow(10.0, decimals);
        if (std::fabs(scaled - std::round(scaled)) < 1e-6 * std::max(1.0, scaled)) {
            return decimals;
        }
    }
    return 9;
}

/// A duration for people: milliseconds, or seconds from ten seconds on.
std::string ms_text(double ns) {
    const double ms = ns / 1e6;
    if (ms >= 10000) {
        return fixed(ms / 1000, 2) + " s";
    }
    return fixed(ms, ms < 1 ? 3 : ms < 100 ? 2 : 1) + " ms";
}

/// Legend entries flow left to right and wrap; `x` and `y` say where the next one goes.
struct LegendFlow {
    double x = label_x;
    double y = 0;
    /// Where an entry `width` wide goes; moves to a new row when it does not fit.
    std::pair<double, double> place(double width) {
        if (x + width > svg_width - 10 && x > label_x) {
            x = label_x;
            y += 20;
        }
        const std::pair<double, double> at{x, y};
        x += width;
        return at;
    }
};

double text_width(std::string_view text) { return 6.5 * static_cast<double>(text.size()); }

std::string timeline_svg(const Timeline& timeline) {
    const std::vector<std::string> names = lane_names(timeline);
    std::string title = timeline.pool.empty() ? std::string("mproc pool") : timeline.pool;
    title += ": " + std::to_string(names.size()) + (names.size() == 1 ? " lane" : " lanes");

    // Time origin and span: from the first submission or start to the last end.
    std::int64_t origin = 0;
    std::int64_t last = 0;
    bool any = false;
    for (const TimelineEvent& event : timeline.events) {
        std::int64_t first = event.start_ns;
        std::int64_t end = event.start_ns;
        if (event.kind == Kind::chunk) {
            first = std::min(first, event.submitted_ns);
            end = std::max(event.start_ns, event.end_ns);
        }
        origin = any ? std::min(origin, first) : first;
        last = any ? std::max(last, end) : end;
        any = true;
    }
    // A timeline of instants alone still gets a scale.
    const double span = std::max<double>(static_cast<double>(last - origin), 1000.0);
    if (any) {
        title += ", " + ms_text(static_cast<double>(last - origin));
    }
    if (timeline.dropped > 0) {
        title += ", " + std::to_string(timeline.dropped) + " events dropped";
    }

    std::string body;
    const auto add = [&body](const std::string& text) { body += text + "\n"; };
    const auto px = [](double value) { return fixed(value, 1); };
    const auto x_of = [&](std::int64_t ns) {
        return plot_left + static_cast<double>(ns - origin) / span * (plot_right - plot_left);
    };

    double height = 0;
    if (!any) {
        add("<text x=\"" + px(label_x) + "\" y=\"56\" font-size=\"13\" fill=\"#666\">no " +
            "events</text>");
        height = 80;
    } else {
        const double lanes_bottom = lanes_top + static_cast<double>(names.size()) * row_height;
        // Stripes, so a bar is easy to follow back to its lane's name.
        for (std::size_t lane = 0; lane < names.size(); ++lane) {
            const double top = lanes_top + static_cast<double>(lane) * row_height;
            if (lane % 2 == 1) {
                add("<rect x=\"0\" y=\"" + px(top) + "\" width=\"" + px(svg_width) +
                    "\" height=\"" + px(row_height) + "\" fill=\"#f3f3f3\"/>");
            }
            add("<text x=\"" + px(label_x) + "\" y=\"" + px(top + 15) + "\"><title>" +
                xml_text(names[lane]) + "</title>" +
                xml_text(cut_text(names[lane], label_code_points)) + "</text>");
        }

        // The axis, in seconds from two seconds on, with grid lines through the lanes.
        const bool seconds = span >= 2e9;
        const double unit = seconds ? 1e9 : 1e6;
        const double step = nice_step(span / unit);
        const int decimals = step_decimals(step);
        const double axis_y = lanes_bottom + 4;
        for (int i = 0; static_cast<double>(i) * step <= span / unit * (1 + 1e-9); ++i) {
            const double value = static_cast<double>(i) * step;
            const double x = plot_left + value * unit / span * (plot_right - plot_left);
            add("<line x1=\"" + px(x) + "\" y1=\"" + px(lanes_top) + "\" x2=\"" + px(x) +
                "\" y2=\"" + px(axis_y + 4) + "\" stroke=\"#dddddd\"/>");
            add("<line x1=\"" + px(x) + "\" y1=\"" + px(axis_y) + "\" x2=\"" + px(x) + "\" y2=\"" +
                px(axis_y + 4) + "\" stroke=\"#333\"/>");
            add("<text x=\"" + px(x) + "\" y=\"" + px(axis_y + 16) + "\" text-anchor=\"middle\">" +
                fixed(value, decimals) + "</text>");
        }
        add("<line x1=\"" + px(plot_left) + "\" y1=\"" + px(axis_y) + "\" x2=\"" + px(plot_right) +
            "\" y2=\"" + px(axis_y) + "\" stroke=\"#333\"/>");
        add(std::string("<text x=\"") + px(plot_left - 22) + "\" y=\"" + px(axis_y + 16) +
            "\" text-anchor=\"end\" fill=\"#555\">time (" + (seconds ? "s" : "ms") + ")</text>");

        // Colours by call in call order: the first call shown is always palette[0].
        std::vector<std::uint64_t> calls;
        for (const TimelineEvent& event : timeline.events) {
            if (event.kind == Kind::chunk) {
                calls.push_back(event.call);
            }
        }
        std::sort(calls.begin(), calls.end());
        calls.erase(std::unique(calls.begin(), calls.end()), calls.end());
        const auto colour_of = [&calls](std::uint64_t call) {
            const auto rank = std::lower_bound(calls.begin(), calls.end(), call) - calls.begin();
            return palette[static_cast<std::size_t>(rank) % palette.size()];
        };

        // Chunks, then the marks on top so a bar never hides one.
        std::string marks;
        for (const TimelineEvent& event : timeline.events) {
            const double top = lanes_top + static_cast<double>(event.lane) * row_height;
            const double mid = top + row_height / 2;
            const double x = x_of(event.start_ns);
            if (event.kind != Kind::chunk) {
                const char* colour = event.kind == Kind::worker_started   ? "#2ca02c"
                                     : event.kind == Kind::worker_retired ? "#ff7f0e"
                                                                          : failure_red;
                std::string mark = "<g><title>" + std::string(worker_event_name(event.kind)) +
                                   " (pid " + std::to_string(event.pid) + ") at " +
                                   ms_text(static_cast<double>(event.start_ns - origin)) +
                                   "</title><line x1=\"" + px(x) + "\" y1=\"" + px(top + 2) +
                                   "\" x2=\"" + px(x) + "\" y2=\"" + px(top + row_height - 2) +
                                   "\" stroke=\"" + colour + "\" stroke-width=\"2\"/>";
                if (event.kind == Kind::worker_lost) {
                    mark += "<polygon points=\"" + px(x - 4) + "," + px(top + 1) + " " + px(x + 4) +
                            "," + px(top + 1) + " " + px(x) + "," + px(top + 7) + "\" fill=\"" +
                            failure_red + "\"/>";
                }
                marks += mark + "</g>\n";
                continue;
            }
            const double end_x = x_of(std::max(event.start_ns, event.end_ns));
            const double width = std::max(1.0, end_x - x);
            const std::string last_item = std::to_string(event.first + event.count - 1);
            const std::string items =
                event.count == 0 ? std::string("no items")
                                 : "items " + std::to_string(event.first) + ".." + last_item;
            const std::string tooltip =
                "call " + std::to_string(event.call) + " " + items + " (" + end_name(event.end) +
                ")\n" +
                ms_text(
                    static_cast<double>(std::max(event.start_ns, event.end_ns) - event.start_ns)) +
                ", pid " + std::to_string(event.pid);
            const std::string box = "x=\"" + px(x) + "\" y=\"" + px(mid - bar_height / 2) +
                                    "\" width=\"" + fixed(width, 2) + "\" height=\"" +
                                    px(bar_height) + "\"";
            const char* colour = colour_of(event.call);
            std::string bar = "<g><title>" + xml_text(tooltip) + "</title>";
            if (event.end == ChunkEnd::finished) {
                // A white edge keeps back-to-back chunks of one call apart.
                bar += "<rect " + box + " fill=\"" + colour +
                       "\" stroke=\"white\" stroke-width=\"0.5\"/>";
            } else if (event.end == ChunkEnd::cancelled) {
                // Never ran: its call's colour washed out under grey hatching.
                bar += "<rect " + box + " fill=\"" + colour + "\" fill-opacity=\"0.35\"/>";
                bar += "<rect " + box + " fill=\"url(#hatch)\" stroke=\"#999\"/>";
            } else {
                bar += "<rect " + box + " fill=\"" + colour + "\" stroke=\"" + failure_red +
                       "\" stroke-width=\"1.5\"/>";
            }
            add(bar + "</g>");
            if (event.end != ChunkEnd::finished) {
                const double cx = std::max(x + 3, x + width - 4);
                marks += "<path d=\"M" + px(cx - 3) + "," + px(mid - 3) + " L" + px(cx + 3) + "," +
                         px(mid + 3) + " M" + px(cx - 3) + "," + px(mid + 3) + " L" + px(cx + 3) +
                         "," + px(mid - 3) + "\" stroke=\"" + failure_red +
                         "\" stroke-width=\"1.5\"/>\n";
            }
        }
        body += marks;

        // The legend: calls first, then what the marks mean.
        LegendFlow flow;
        flow.y = axis_y + 36;
        const std::size_t shown = std::min(calls.size(), palette.size());
        for (std::size_t i = 0; i < shown; ++i) {
            const std::string label = "call " + std::to_string(calls[i]);
            const auto [lx, ly] = flow.place(22 + text_width(label));
            add("<rect x=\"" + px(lx) + "\" y=\"" + px(ly - 10) +
                "\" width=\"12\" height=\"12\" fill=\"" + palette[i] + "\"/><text x=\"" +
                px(lx + 16) + "\" y=\"" + px(ly) + "\">" + label + "</text>");
        }
        if (calls.size() > shown) {
            const std::string label =
                "+ " + std::to_string(calls.size() - shown) + " more calls (colours repeat)";
            const auto [lx, ly] = flow.place(text_width(label) + 10);
            add("<text x=\"" + px(lx) + "\" y=\"" + px(ly) + "\" fill=\"#555\">" + label +
                "</text>");
        }
        flow.x = label_x;
        flow.y += 22;
        // `shape(x, y)` draws a 12 px sample with its top left corner at (x, y).
        const auto swatch = [&](const auto& shape, const std::string& label) {
            const auto [lx, ly] = flow.place(22 + text_width(label));
            add(shape(lx, ly - 10) + "<text x=\"" + px(lx + 16) + "\" y=\"" + px(ly) + "\">" +
                label + "</text>");
        };
        const auto square = [px](const std::string& paint) {
            return [px, paint](double x, double y) {
                return "<rect x=\"" + px(x) + "\" y=\"" + px(y) + "\" width=\"12\" height=\"12\" " +
                       paint + "/>";
            };
        };
        const auto tick = [px](const char* colour) {
            return [px, colour](double x, double y) {
                return "<line x1=\"" + px(x + 6) + "\" y1=\"" + px(y) + "\" x2=\"" + px(x + 6) +
                       "\" y2=\"" + px(y + 12) + "\" stroke=\"" + colour +
                       "\" stroke-width=\"2\"/>";
            };
        };
        swatch(square("fill=\"#bbb\" stroke=\"" + std::string(failure_red) +
                      "\" stroke-width=\"1.5\""),
               "failed, lost, timed out");
        swatch(square("fill=\"url(#hatch)\" stroke=\"#999\""), "cancelled");
        swatch(tick("#2ca02c"), "worker started");
        swatch(tick("#ff7f0e"), "worker retired");
        swatch(tick(failure_red), "worker lost");
        height = flow.y + 14;
    }

    std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + px(svg_width) + "\" height=\"" +
           px(height) + "\" viewBox=\"0 0 " + px(svg_width) + " " + px(height) +
           "\" font-family=\"sans-serif\" font-size=\"11\">\n";
    out += "<defs><pattern id=\"hatch\" width=\"5\" height=\"5\" patternUnits=\"userSpaceOnUse\" "
           "patternTransform=\"rotate(45)\"><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"5\" "
           "stroke=\"#888\" stroke-width=\"2\"/></pattern></defs>\n";
    out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    out += "<text x=\"" + px(label_x) + "\" y=\"20\" font-size=\"14\" font-weight=\"bold\">" +
           xml_text(title) + "</text>\n";
    out += body;
    out += "</svg>\n";
    return out;
}

} // namespace

void write_chrome_trace(const Timeline& timeline, const std::filesystem::path& path) {
    write_file(path, chrome_trace(timeline));
}

void write_timeline_svg(const Timeline& timeline, const std::filesystem::path& path) {
    write_file(path, timeline_svg(timeline));
}

void write_timeline(const Timeline& timeline, const std::filesystem::path& path) {
    if (path.extension() == ".svg") {
        write_timeline_svg(timeline, path);
    } else {
        write_chrome_trace(timeline, path);
    }
}

} // namespace mproc
