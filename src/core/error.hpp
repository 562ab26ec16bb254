#pragma once
// One error type for every layer. A message that reaches a user is one line:
// what went wrong, then what to do about it.
#include <stdexcept>
#include <string>

namespace sq {

enum class ErrorKind {
  usage,         // bad flag, bad argument
  config,        // config file missing or invalid
  refused,       // a safety gate declined; nothing was changed
  conflict,      // another run holds the gate
  not_found,     // unknown volume, run, path ...
  io,            // operating-system failure
  database,      // SQLite failure
  corrupt,       // data that contradicts its own invariants
  already_finished,
  internal,
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

[[noreturn]] inline void fail(ErrorKind kind, const std::string& message) { throw Error(kind, message); }

// Builds "<what>: <errno text>" for a failed system call.
std::string errno_message(const std::string& what, int err);
[[noreturn]] void fail_errno(const std::string& what, int err);

}  // namespace sq
