// A plain TCP client socket for tests of servers' connection handling: connected from a chosen
// address of 127.0.0.0/8 (so one machine can play many clients), and left to the test to use.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace doppel::testing {

// A blocking socket from `from` to 127.0.0.1:port, connected (the server need not accept it
// yet: the kernel completes the handshake). The caller closes it.
inline int ConnectFrom(uint16_t port, const std::string& from = "127.0.0.1") {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  ::inet_pton(AF_INET, from.c_str(), &local.sin_addr);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)), 0) << from;
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &server.sin_addr);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&server), sizeof(server)), 0);
  return fd;
}

}  // namespace doppel::testing
