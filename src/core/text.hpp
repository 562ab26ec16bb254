#pragma once
// Small text helpers shared by every layer: the name rule, durations, sizes,
// escaping of untrusted bytes for display, and time formatting.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sq {

// ^[a-zA-Z0-9][a-zA-Z0-9_-]*$ — names become TOML keys, remote folders and
// file names, so they stay boring.
bool valid_name(std::string_view name);

// Go-style durations ("90m", "1h30m", "250ms") plus "d" for days.
// Returns nullopt on anything malformed or negative.
std::optional<std::int64_t> parse_duration_ns(std::string_view text);
std::string format_duration_ns(std::int64_t ns);

// Human sizes: "512", "32MiB", "1.5GB", "4k".
std::optional<std::int64_t> parse_size_bytes(std::string_view text);
std::string format_bytes(std::int64_t bytes);

// Bytes from the filesystem are not text: anything that is not printable
// UTF-8 is shown as \xNN, and backslash, newline and tab are escaped.
std::string escape_for_display(std::string_view bytes);

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past
// U+10FFFF — the sequences Go's decoder accepts, byte for byte.
bool is_valid_utf8(std::string_view bytes);
inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD
// `bytes` with each byte that does not begin a valid sequence replaced by
// U+FFFD, one per byte: the text Go's encoding/json writes for such a
// string, so receipts spell names as the reference does.
std::string utf8_replacing_invalid(std::string_view bytes);

// Standard base64 (RFC 4648, with padding). Decoding refuses anything else:
// other characters, missing or misplaced padding, non-zero spare bits.
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

// JSON text as Go's encoding/json writes it, from JSON that nlohmann::json
// dumped: '<', '>' and '&' become \u003c, \u003e and \u0026, and U+2028 and
// U+2029 become \u2028 and \u2029. None of them can occur outside a string
// in JSON, so rewriting the whole text is safe; what is on a destination
// then matches what the reference writes, byte for byte.
std::string go_json(std::string_view dumped);
// `bytes` as a JSON string literal written exactly as Go's encoding/json
// writes a Go string: each byte that is not part of valid UTF-8 becomes the
// escape \ufffd (a real U+FFFD stays raw), plus go_json's HTML escapes.
std::string go_json_string(std::string_view bytes);

std::int64_t now_ns();
std::string rfc3339_utc(std::int64_t ns);
// Go's time.RFC3339Nano in UTC: the fraction without trailing zeros, none
// at all on a whole second ("2026-01-02T03:04:05.5Z").
std::string rfc3339_nano_utc(std::int64_t ns);
// RFC 3339 with an optional fraction and a Z or ±hh:mm offset.
std::optional<std::int64_t> parse_rfc3339_ns(std::string_view text);
// yyyymmddThhmmss.mmmZ — sortable and safe in a file name.
std::string compact_utc(std::int64_t ns);

}  // namespace sq
