#include "core/error.hpp"

#include <cstring>

namespace sq {

std::string errno_message(const std::string& what, int err) { return what + ": " + std::strerror(err); }

void fail_errno(const std::string& what, int err) { throw Error(ErrorKind::io, errno_message(what, err)); }

}  // namespace sq
