// Output files written whole or not at all: the content goes to `<path>.partial`, which is
// renamed over `path` once complete, so a reader never sees half a file and a failed write leaves
// what was there before.
//
// Only a regular file, or nothing, is replaced at `path`. Anything else there (a symbolic link, a
// directory, a device, a FIFO, a socket) is refused with InvalidArgument naming what it is, and
// left untouched: the rename would put a regular file in its place (as root, `--out /dev/full`
// replaced the device node), and writing through instead would lose the all-or-nothing
// guarantee. The same goes for `<path>.partial`: a stale regular one (a crashed write) is
// removed, anything else is refused, and the new one is created exclusively without following a
// link (O_EXCL | O_NOFOLLOW), so a link planted there is never written through.
#pragma once

#include <string>

#include "doppel/core/status.h"

namespace doppel::archive {

class OutputFile {
 public:
  // Checks `path` and creates an empty `<path>.partial` for the caller to write by name.
  static Result<OutputFile> Begin(std::string path);

  OutputFile(OutputFile&& other) noexcept;
  OutputFile& operator=(OutputFile&&) = delete;
  OutputFile(const OutputFile&) = delete;
  // Removes the partial file unless Commit() succeeded.
  ~OutputFile();

  const std::string& path() const { return path_; }
  const std::string& partial() const { return partial_; }

  // Renames the (closed, complete) partial file over `path`, checking `path` again first.
  Status Commit();

 private:
  explicit OutputFile(std::string path);
  std::string path_;
  std::string partial_;  // empty once committed or moved from
};

}  // namespace doppel::archive
