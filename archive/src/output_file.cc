#include "doppel/archive/output_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace doppel::archive {
namespace {

const char* KindOf(mode_t mode) {
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// Ok when nothing is at `path` (*exists false) or a regular file is (*exists true); lstat, so a
// symbolic link is seen as itself, never as its target.
Status CheckReplaceable(const std::string& path, bool* exists) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      *exists = false;
      return Status::Ok();
    }
    return Status::IOError(fmt::format("{}: {}", path, std::strerror(errno)));
  }
  *exists = true;
  if (S_ISREG(st.st_mode)) return Status::Ok();
  return Status::InvalidArgument(
      fmt::format("{} is {}: refusing to replace it (only a regular file or a new path is "
                  "written; give the file itself, e.g. a link's target)",
                  path, KindOf(st.st_mode)));
}

}  // namespace

OutputFile::OutputFile(std::string path) : path_(std::move(path)) {}

OutputFile::OutputFile(OutputFile&& other) noexcept
    : path_(std::move(other.path_)), partial_(std::move(other.partial_)) {
  other.partial_.clear();
}

OutputFile::~OutputFile() {
  if (!partial_.empty()) ::unlink(partial_.c_str());
}

Result<OutputFile> OutputFile::Begin(std::string path) {
  bool exists = false;
  DOPPEL_RETURN_IF_ERROR(CheckReplaceable(path, &exists));
  const std::string partial = path + ".partial";
  DOPPEL_RETURN_IF_ERROR(CheckReplaceable(partial, &exists));
  if (exists && ::unlink(partial.c_str()) != 0 && errno != ENOENT) {
    return Status::IOError(fmt::format("removing the stale {}: {}", partial, std::strerror(errno)));
  }
  // Exclusive and not through a link: whatever appears at the name after the check above makes
  // this fail rather than be written through.
  const int fd =
      ::open(partial.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(fmt::format("creating {}: {}", partial, std::strerror(errno)));
  ::close(fd);
  OutputFile out(std::move(path));
  out.partial_ = partial;
  return out;
}

Status OutputFile::Commit() {
  if (partial_.empty()) return Status::InvalidArgument("OutputFile: nothing to commit");
  // Again: something may have been put at `path` while the content was written.
  bool exists = false;
  DOPPEL_RETURN_IF_ERROR(CheckReplaceable(path_, &exists));
  if (std::rename(partial_.c_str(), path_.c_str()) != 0) {
    return Status::IOError(
        fmt::format("renaming {} to {}: {}", partial_, path_, std::strerror(errno)));
  }
  partial_.clear();
  return Status::Ok();
}

}  // namespace doppel::archive
