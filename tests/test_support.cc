#include "test_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "doppel/schemas/robot_events_generated.h"

namespace doppel::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base ? base : "/tmp") + "/doppel-test-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) std::abort();
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string JointStatePayload(const std::vector<std::string>& names,
                              const std::vector<double>& positions) {
  flatbuffers::FlatBufferBuilder fbb;
  auto n = fbb.CreateVectorOfStrings(names);
  auto p = fbb.CreateVector(positions);
  fbb.Finish(events::CreateJointStateObserved(fbb, n, p));
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

eventstore::NewEvent JointStateEvent(double position, EventId id) {
  eventstore::NewEvent e;
  e.id = id;
  e.type = "JointStateObserved";
  e.payload = JointStatePayload({"j1"}, {position});
  return e;
}

std::string DoppelBinary() { return DOPPEL_BINARY; }

CommandResult RunDoppel(const std::vector<std::string>& args) {
  TempDir io;
  const std::string out_path = io.Sub("out"), err_path = io.Sub("err");
  const pid_t pid = ::fork();
  if (pid == 0) {
    FILE* out = std::freopen(out_path.c_str(), "w", stdout);
    FILE* err = std::freopen(err_path.c_str(), "w", stderr);
    if (out == nullptr || err == nullptr) ::_exit(127);
    std::vector<char*> argv;
    std::string bin = DoppelBinary();
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::stringstream out, err;
  out << std::ifstream(out_path).rdbuf();
  err << std::ifstream(err_path).rdbuf();
  r.out = out.str();
  r.err = err.str();
  return r;
}

}  // namespace doppel::testing
