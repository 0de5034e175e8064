#pragma once
// A scripted HTTP server on loopback for fault tests (plain POSIX sockets, one
// thread, one connection at a time): each request is handed to a script that
// answers with raw bytes, closes mid-response, or hangs. It records every request.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace m365vault::test {

struct ScriptedRequest {
  std::string method;
  std::string target;
  std::string head;  // request line and headers
  std::string body;
};

struct ScriptedReply {
  std::string bytes;     // sent as they are
  bool close = false;    // close the connection after sending
  std::chrono::milliseconds hang{0};  // wait this long before sending anything

  static ScriptedReply status(int code, const std::string& body = {}, const std::string& extra_headers = {}) {
    return {"HTTP/1.1 " + std::to_string(code) + " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
                extra_headers + "\r\n" + body,
            false, std::chrono::milliseconds(0)};
  }
  static ScriptedReply s3_error(int code, const std::string& s3_code) {
    return status(code, "<?xml version=\"1.0\"?><Error><Code>" + s3_code + "</Code><Message>scripted</Message></Error>");
  }
};

class ScriptedServer {
 public:
  using Script = std::function<ScriptedReply(const ScriptedRequest&, int index)>;

  explicit ScriptedServer(Script script) : script_(std::move(script)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listener_, 16) != 0)
      throw std::runtime_error("scripted server: bind/listen failed");
    socklen_t len = sizeof a;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  unsigned short port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<ScriptedRequest> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  bool wait_readable(int fd) {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) return true;
    }
    return false;
  }

  void serve() {
    while (wait_readable(listener_)) {
      int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) continue;
      handle(fd);
      ::close(fd);
    }
  }

  void handle(int fd) {
    std::string buf;
    for (;;) {
      std::size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        if (!read_more(fd, buf)) return;
      }
      ScriptedRequest r;
      r.head = buf.substr(0, end);
      buf.erase(0, end + 4);
      auto sp1 = r.head.find(' '), sp2 = r.head.find(' ', sp1 + 1);
      r.method = r.head.substr(0, sp1);
      r.target = r.head.substr(sp1 + 1, sp2 - sp1 - 1);
      std::size_t length = 0;
      std::string lower = r.head;
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (auto p = lower.find("\r\ncontent-length:"); p != std::string::npos) length = std::stoul(lower.substr(p + 17));
      while (buf.size() < length)
        if (!read_more(fd, buf)) return;
      r.body = buf.substr(0, length);
      buf.erase(0, length);
      int index;
      {
        std::lock_guard lock(mu_);
        index = static_cast<int>(requests_.size());
        requests_.push_back(r);
      }
      ScriptedReply reply = script_(r, index);
      auto until = std::chrono::steady_clock::now() + reply.hang;
      while (!stop_ && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      std::size_t sent = 0;
      while (sent < reply.bytes.size()) {
        ssize_t n = ::send(fd, reply.bytes.data() + sent, reply.bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) return;
        sent += static_cast<std::size_t>(n);
      }
      if (reply.close || reply.hang.count() > 0) return;
    }
  }

  bool read_more(int fd, std::string& buf) {
    if (!wait_readable(fd)) return false;
    char tmp[65536];
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<std::size_t>(n));
    return true;
  }

  Script script_;
  int listener_ = -1;
  unsigned short port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<ScriptedRequest> requests_;
};

}  // namespace m365vault::test
