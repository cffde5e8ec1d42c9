#include "doppel/eventstore/zmq_security.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

namespace doppel::eventstore {
namespace {

std::string Trim(std::string s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  const auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

bool ValidZ85Key(const std::string& key) {
  if (key.size() != 40) return false;
  uint8_t decoded[32];
  return zmq_z85_decode(decoded, key.c_str()) != nullptr;
}

}  // namespace

Result<CurveKeyPair> GenerateCurveKeyPair() {
  char pub[41], sec[41];
  if (zmq_curve_keypair(pub, sec) != 0) {
    return Status::Unavailable(
        fmt::format("CURVE is not available: {}", zmq_strerror(zmq_errno())));
  }
  return CurveKeyPair{pub, sec};
}

Status WriteCurveKeyFiles(const std::string& name, const CurveKeyPair& keys) {
  {
    std::ofstream out(name + ".key", std::ios::trunc);
    if (!out) return Status::IOError(fmt::format("cannot write {}.key", name));
    out << "# doppel CURVE key: keep this file private\npublic = " << keys.public_key
        << "\nsecret = " << keys.secret_key << "\n";
    if (!out.flush()) return Status::IOError(fmt::format("cannot write {}.key", name));
  }
  ::chmod((name + ".key").c_str(), 0600);
  std::ofstream pub(name + ".pub", std::ios::trunc);
  if (!pub) return Status::IOError(fmt::format("cannot write {}.pub", name));
  pub << "# doppel CURVE public key\npublic = " << keys.public_key << "\n";
  if (!pub.flush()) return Status::IOError(fmt::format("cannot write {}.pub", name));
  return Status::Ok();
}

Result<CurveKeyPair> ReadCurveKeyFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(fmt::format("cannot read key file {}", path));
  CurveKeyPair keys;
  std::string line;
  while (std::getline(in, line)) {
    line = Trim(line);
    if (line.empty() || line[0] == '#') continue;  // z85 keys may contain '#': whole lines only
    const auto eq = line.find('=');
    const std::string name = eq == std::string::npos ? "public" : Trim(line.substr(0, eq));
    const std::string value = Trim(eq == std::string::npos ? line : line.substr(eq + 1));
    if (!ValidZ85Key(value)) {
      return Status::InvalidArgument(
          fmt::format("{}: '{}' is not a 40-character z85 key", path, name));
    }
    if (name == "public")
      keys.public_key = value;
    else if (name == "secret")
      keys.secret_key = value;
    else
      return Status::InvalidArgument(fmt::format("{}: unknown entry '{}'", path, name));
  }
  if (keys.public_key.empty())
    return Status::InvalidArgument(fmt::format("{} has no public key", path));
  return keys;
}

Result<std::vector<std::string>> ReadAllowedKeys(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(fmt::format("cannot read allowed-clients file {}", path));
  std::vector<std::string> keys;
  std::string line;
  while (std::getline(in, line)) {
    line = Trim(line);
    if (line.empty() || line[0] == '#') continue;
    const auto eq = line.find('=');
    if (eq != std::string::npos) {
      if (Trim(line.substr(0, eq)) != "public") continue;  // never accept secret lines as keys
      line = Trim(line.substr(eq + 1));
    }
    if (!ValidZ85Key(line)) {
      return Status::InvalidArgument(fmt::format("{}: '{}' is not a z85 public key", path, line));
    }
    keys.push_back(line);
  }
  return keys;
}

void ConfigureClientSocket(zmq::socket_t& socket, const std::string& endpoint,
                           const std::optional<CurveClientConfig>& curve) {
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::reconnect_ivl, 50);
  socket.set(zmq::sockopt::reconnect_ivl_max, 1000);
  if (curve && IsTcpEndpoint(endpoint)) {
    socket.set(zmq::sockopt::curve_serverkey, curve->server_public_key);
    socket.set(zmq::sockopt::curve_publickey, curve->client.public_key);
    socket.set(zmq::sockopt::curve_secretkey, curve->client.secret_key);
  }
}

zmq::context_t& SharedZmqContext() {
  static zmq::context_t* context = new zmq::context_t(2);  // lives for the whole process
  return *context;
}

Result<zmq::socket_t> ConnectSubscriber(const std::string& endpoint, std::string_view prefix,
                                        int receive_hwm) {
  try {
    zmq::socket_t sub(SharedZmqContext(), zmq::socket_type::sub);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::rcvhwm, receive_hwm);
    sub.set(zmq::sockopt::subscribe, prefix);
    // Several publishers (one per twin partition) feed one socket; ZeroMQ fair-queues them.
    for (size_t start = 0; start <= endpoint.size();) {
      size_t end = endpoint.find(',', start);
      if (end == std::string::npos) end = endpoint.size();
      if (end > start) sub.connect(endpoint.substr(start, end - start));
      start = end + 1;
    }
    return sub;
  } catch (const zmq::error_t& e) {
    return Status::InvalidArgument(fmt::format("cannot subscribe to {}: {}", endpoint, e.what()));
  }
}

}  // namespace doppel::eventstore
