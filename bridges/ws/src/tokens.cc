// Bearer tokens and roles (declared in gateway.h): the token file's format and its creation.
#include <fmt/format.h>
#include <sys/stat.h>

#include <fstream>
#include <random>
#include <sstream>

#include "doppel/bridges/gateway.h"

namespace doppel::gateway {
namespace {

std::string RandomToken() {
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 4; ++i) out += fmt::format("{:08x}", rd());
  return out;
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
  }
  return "viewer";
}

Result<std::vector<Token>> LoadTokens(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(fmt::format("cannot read token file {}", path));
  std::vector<Token> tokens;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    Token t;
    std::string role;
    if (!(words >> t.token)) continue;
    if (!(words >> role)) {
      return Status::InvalidArgument(fmt::format("{}:{}: want TOKEN ROLE [NAME]", path, n));
    }
    if (role == "viewer") {
      t.role = Role::kViewer;
    } else if (role == "operator") {
      t.role = Role::kOperator;
    } else if (role == "admin") {
      t.role = Role::kAdmin;
    } else {
      return Status::InvalidArgument(
          fmt::format("{}:{}: role '{}' is not viewer, operator or admin", path, n, role));
    }
    words >> t.name;
    if (t.name.empty()) t.name = role;
    tokens.push_back(std::move(t));
  }
  return tokens;
}

Result<std::vector<Token>> CreateTokenFile(const std::string& path) {
  std::vector<Token> tokens = {{RandomToken(), Role::kViewer, "viewer"},
                               {RandomToken(), Role::kOperator, "operator"},
                               {RandomToken(), Role::kAdmin, "admin"}};
  const mode_t old = ::umask(077);
  std::ofstream out(path, std::ios::trunc);
  ::umask(old);
  if (!out) return Status::IOError(fmt::format("cannot write token file {}", path));
  out << "# doppel gateway tokens: TOKEN ROLE [NAME]; roles: viewer, operator, admin\n";
  for (const auto& t : tokens) out << t.token << ' ' << RoleName(t.role) << ' ' << t.name << '\n';
  if (!out.flush()) return Status::IOError(fmt::format("cannot write token file {}", path));
  return tokens;
}

}  // namespace doppel::gateway
