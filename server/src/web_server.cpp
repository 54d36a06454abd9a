// The only translation unit that includes Boost.Beast (it is slow to compile): keep it that way.
#include "web_server.hpp"

#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <set>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "agent_handshake.h"
#include "hotd/protocol/framing.hpp"

namespace hotd::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using nlohmann::json;

namespace {

constexpr std::size_t kMaxQueuedBytes = 64 * 1024 * 1024;  // an editor that stops reading is dropped
// A peer sends its whole request header (or, an agent, its proof line) within this: half-sent
// requests must not hold connections (slowloris). Clients send their header at once.
constexpr auto kHeaderTimeout = std::chrono::seconds(1);
constexpr auto kResponseTimeout = std::chrono::seconds(10);  // to take a response or the 101
// Connections that have not proved the token yet, from one peer (a uid on this machine, else an
// address) at once; beyond it the newcomer is closed at once.
constexpr std::size_t kMaxUnprovenPerPeer = 16;
constexpr std::string_view kAgentUpgrade = "hotd-agent";
constexpr auto kRefusalSummaryPeriod = std::chrono::seconds(10);
constexpr std::size_t kMaxLoggedFieldBytes = 128;
// The agent's answer to the daemon's proof: "Hotd-Agent-Proof: <proof>\r\n".
constexpr std::string_view kAgentProofPrefix = HOTD_AGENT_PROOF_HEADER ": ";
constexpr std::size_t kAgentProofLineBytes = kAgentProofPrefix.size() + HOTD_PROOF_HEX + 2;

// 32 random bytes as lowercase hex (the token, and the daemon's nonces); empty when the system
// has no randomness to give.
std::string random_hex() {
  unsigned char bytes[HOTD_NONCE_HEX / 2];
  for (std::size_t filled = 0; filled < sizeof bytes;) {
    const ssize_t got = ::getrandom(bytes + filled, sizeof bytes - filled, 0);
    if (got < 0 && errno != EINTR) return {};
    if (got > 0) filled += static_cast<std::size_t>(got);
  }
  std::string hex;
  for (const unsigned char byte : bytes) {
    char digits[3];
    std::snprintf(digits, sizeof digits, "%02x", byte);
    hex += digits;
  }
  return hex;
}

// Written in place (never replaced by a rename), so that a bind mount of this one file into a
// container follows the daemon's restarts. Mode 0600 even when an older file had another.
bool write_info(const std::string& path, const json& info, std::string& error) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 || ::fchmod(fd, 0600) != 0) {
    error = "cannot write " + path + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return false;
  }
  const std::string text = info.dump(2) + "\n";
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!written) error = "cannot write " + path;
  return written;
}

bool same_token(std::string_view given, const std::string& token) {
  if (given.size() != token.size()) return false;
  unsigned char difference = 0;  // constant time: no early exit on the first differing byte
  for (std::size_t i = 0; i < token.size(); ++i) difference |= static_cast<unsigned char>(given[i] ^ token[i]);
  return difference == 0;
}

// The value of `name` in a target's query string ("/lsp?token=abc"), without percent-decoding:
// tokens are hex.
std::string_view query_parameter(std::string_view target, std::string_view name) {
  const auto question = target.find('?');
  if (question == std::string_view::npos) return {};
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (pair.size() > name.size() && pair.starts_with(name) && pair[name.size()] == '=') {
      return pair.substr(name.size() + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

// A field a peer chose (an Origin), as the log may show it: printable, and cut.
std::string loggable(std::string_view field) {
  std::string text;
  for (const char c : field.substr(0, kMaxLoggedFieldBytes)) text += c >= 0x20 && c < 0x7f ? c : '?';
  if (field.size() > kMaxLoggedFieldBytes) text += "... (" + std::to_string(field.size()) + " bytes)";
  return text;
}

// Refusals of peers that have not proved the token, logged in aggregate so that a flood of them
// cannot fill the disk: the first of each kind in an episode in full, then one line per
// kRefusalSummaryPeriod with the rest counted by kind; a period without any ends the episode.
class RefusalLog {
 public:
  RefusalLog(asio::io_context& io, WebHost& host) : host_(host), timer_(io) {}

  // `kind` says what was refused in the summaries ("from a foreign Origin"); `line` is the full
  // line for the first of its kind.
  void refused(const std::string& kind, const std::string& line) {
    if (stopped_) return;
    refused_in_period_ = true;
    const auto [count, first] = counts_.try_emplace(kind, 0);
    if (first) {
      host_.log(line);
    } else {
      ++count->second;
    }
    if (!timing_) start_period();
  }

  // At stop: what is counted and not yet said; what comes later is not logged.
  void flush() {
    timer_.cancel();
    summarize();
    stopped_ = true;
  }

 private:
  void start_period() {
    timing_ = true;
    period_start_ = std::chrono::steady_clock::now();
    timer_.expires_after(kRefusalSummaryPeriod);
    timer_.async_wait([this](const boost::system::error_code& error) {
      if (error) return;  // cancelled: flushed at stop, or destroyed with the server
      summarize();
      timing_ = false;
      if (refused_in_period_) {
        refused_in_period_ = false;
        return start_period();
      }
      counts_.clear();  // a quiet period: the next refusal of any kind is logged in full again
    });
  }

  void summarize() {
    std::size_t total = 0;
    std::string kinds;
    for (auto& [kind, count] : counts_) {
      if (count == 0) continue;
      kinds += (kinds.empty() ? "" : ", ") + std::to_string(count) + " " + kind;
      total += count;
      count = 0;
    }
    if (total == 0) return;
    const auto seconds = std::chrono::ceil<std::chrono::seconds>(std::chrono::steady_clock::now() - period_start_).count();
    host_.log("web: refused " + std::to_string(total) + " more in the last " + std::to_string(seconds) + " s: " + kinds);
  }

  WebHost& host_;
  asio::steady_timer timer_;
  std::map<std::string, std::size_t> counts_;  // by kind, each logged in full once this episode
  std::chrono::steady_clock::time_point period_start_;
  bool timing_ = false;
  bool refused_in_period_ = false;
  bool stopped_ = false;
};

// The uid owning the other end of a TCP connection from this machine (loopback, or another address
// of this host), asked of the kernel's socket diagnostics (sock_diag) by the connection's addresses;
// nullopt for a peer elsewhere or when the kernel does not say.
std::optional<uid_t> local_peer_uid(const tcp::endpoint& local, const tcp::endpoint& remote) {
  if (local.address().is_v4() != remote.address().is_v4()) return std::nullopt;
  const int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return std::nullopt;
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } query{};
  query.header.nlmsg_len = sizeof query;
  query.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  query.header.nlmsg_flags = NLM_F_REQUEST;
  query.request.sdiag_family = remote.address().is_v4() ? AF_INET : AF_INET6;
  query.request.sdiag_protocol = IPPROTO_TCP;
  query.request.idiag_states = ~0u;
  // The peer's own socket: its source is this connection's remote end.
  query.request.id.idiag_sport = htons(remote.port());
  query.request.id.idiag_dport = htons(local.port());
  const auto copy_address = [](const asio::ip::address& address, __be32* into) {
    if (address.is_v4()) {
      const auto bytes = address.to_v4().to_bytes();
      std::memcpy(into, bytes.data(), bytes.size());
    } else {
      const auto bytes = address.to_v6().to_bytes();
      std::memcpy(into, bytes.data(), bytes.size());
    }
  };
  copy_address(remote.address(), query.request.id.idiag_src);
  copy_address(local.address(), query.request.id.idiag_dst);
  query.request.id.idiag_cookie[0] = query.request.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  std::optional<uid_t> uid;
  if (::sendto(fd, &query, sizeof query, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) ==
      static_cast<ssize_t>(sizeof query)) {
    alignas(nlmsghdr) char reply[1024];
    const ssize_t size = ::recv(fd, reply, sizeof reply, MSG_DONTWAIT);  // answered within sendto
    const auto* header = reinterpret_cast<const nlmsghdr*>(reply);
    if (size >= static_cast<ssize_t>(NLMSG_LENGTH(sizeof(inet_diag_msg))) && NLMSG_OK(header, static_cast<unsigned>(size)) &&
        header->nlmsg_type == SOCK_DIAG_BY_FAMILY) {
      uid = static_cast<const inet_diag_msg*>(NLMSG_DATA(header))->idiag_uid;
    }
  }
  ::close(fd);
  return uid;
}

std::string describe(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  return (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
         std::to_string(endpoint.port());
}

}  // namespace

struct WebServer::Impl : std::enable_shared_from_this<WebServer::Impl> {
  Impl(asio::io_context& io, WebHost& host, WebOptions options)
      : io(io), host(host), options(std::move(options)), refusals(io, host) {}

  struct Listener {
    tcp::acceptor acceptor;
    bool agents_only;
  };

  asio::io_context& io;
  WebHost& host;
  WebOptions options;
  std::string token;
  std::deque<Listener> listeners;  // deque: acceptors stay in place while others are added
  std::set<std::weak_ptr<void>, std::owner_less<std::weak_ptr<void>>> websockets;  // closed by stop()
  bool stopped = false;
  std::size_t open_connections = 0;  // counted by ConnectionSlot
  // Connections that have not proved the token yet, in all and by peer (ConnectionSlot).
  std::size_t unproven_connections = 0;
  std::map<std::string, std::size_t> unproven_by_peer;
  RefusalLog refusals;
  bool accept_failing = false;  // since the last accept that succeeded

  bool allowed_origin(std::string_view origin) const {
    if (origin.starts_with("vscode-webview://") || origin.starts_with("vscode-file://")) return true;
    for (const std::string& allowed : options.allowed_origins) {
      if (origin == allowed) return true;
    }
    return false;
  }

  void accept(Listener& listener);
  void admit(tcp::socket socket, bool agents_only);
};

namespace {

// Who is on the other end, for the limits on connections that have not proved the token.
struct Peer {
  std::string key;        // "uid N" for a peer on this machine, else its address
  bool same_uid = false;  // the daemon's own uid: the token holder, in all likelihood
};

Peer identify(const tcp::socket& socket) {
  boost::system::error_code error;
  const auto remote = socket.remote_endpoint(error);
  const auto local = error ? tcp::endpoint() : socket.local_endpoint(error);
  if (error) return {"(unknown peer)"};
  if (const auto uid = local_peer_uid(local, remote)) return {"uid " + std::to_string(*uid), *uid == ::geteuid()};
  return {remote.address().to_string()};
}

// Holds one of the web server's connections for as long as a request or its WebSocket lives, and
// counts it as unproven (by its peer) until it proved the token.
class ConnectionSlot {
 public:
  ConnectionSlot(std::shared_ptr<WebServer::Impl> server, std::string peer)
      : server_(std::move(server)), peer_(std::move(peer)) {
    ++server_->open_connections;
    ++server_->unproven_connections;
    ++server_->unproven_by_peer[peer_];
  }
  ConnectionSlot(ConnectionSlot&& other) noexcept = default;
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ~ConnectionSlot() {
    if (!server_) return;  // moved from
    proved();
    --server_->open_connections;
  }

  // The peer holds the token: the connection leaves the unproven ones.
  void proved() {
    if (!server_ || !unproven_) return;
    unproven_ = false;
    --server_->unproven_connections;
    const auto count = server_->unproven_by_peer.find(peer_);
    if (--count->second == 0) server_->unproven_by_peer.erase(count);
  }

 private:
  std::shared_ptr<WebServer::Impl> server_;
  std::string peer_;
  bool unproven_ = true;
};

// An editor on a WebSocket: each text message is one JSON-RPC message, exactly what an LSP base
// frame carries on the Unix socket, handed to the same LspSession.
class WebSocketEditor : public std::enable_shared_from_this<WebSocketEditor> {
 public:
  WebSocketEditor(std::shared_ptr<WebServer::Impl> server, ConnectionSlot slot, beast::tcp_stream stream, std::string peer)
      : server_(std::move(server)), slot_(std::move(slot)), ws_(std::move(stream)), peer_(std::move(peer)) {}

  void start(http::request<http::empty_body> request) {
    beast::get_lowest_layer(ws_).expires_never();  // the WebSocket has its own timeouts
    // An editor may say nothing for hours: ping it after half the idle timeout, close it when it
    // does not answer.
    auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
    timeouts.keep_alive_pings = true;
    ws_.set_option(timeouts);
    ws_.read_message_max(protocol::kDefaultMaxMessageBytes);
    ws_.async_accept(request, [self = shared_from_this()](const beast::error_code& error) {
      if (error) return self->server_->host.log("websocket " + self->peer_ + ": handshake failed: " + error.message());
      self->open();
    });
  }

  void close() {
    if (!open_) return;
    open_ = false;
    if (session_) server_->host.close_editor(session_);
    session_.reset();
    server_->websockets.erase(weak_from_this());
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).close();
  }

 private:
  void open() {
    const std::weak_ptr<WebSocketEditor> weak = shared_from_this();
    session_ = server_->host.open_editor(
        [weak](const json& message) {
          if (const auto self = weak.lock()) self->send(message);
        },
        [weak, &io = server_->io] {  // after `exit`: posted, the session is still on the stack
          asio::post(io, [weak] {
            if (const auto self = weak.lock()) self->close();
          });
        },
        "websocket editor " + peer_);
    server_->websockets.insert(weak);
    read();
  }

  void read() {
    ws_.async_read(input_, [self = shared_from_this()](const beast::error_code& error, std::size_t) {
      if (!self->open_) return;
      if (error) {
        if (error != websocket::error::closed && error != asio::error::eof) {
          self->server_->host.log("websocket " + self->peer_ + ": closing: " + error.message());
        }
        return self->close();
      }
      const std::string body = beast::buffers_to_string(self->input_.data());
      self->input_.consume(self->input_.size());
      self->session_->receive(body);
      if (self->open_) self->read();
    });
  }

  void send(const json& message) {
    if (!open_) return;
    std::string text = message.dump(-1, ' ', false, json::error_handler_t::replace);
    queued_bytes_ += text.size();
    if (queued_bytes_ > kMaxQueuedBytes) {
      server_->host.log("websocket " + peer_ + ": closing: it stopped reading");
      return close();
    }
    outbox_.push_back(std::move(text));
    if (!writing_) write_next();
  }

  void write_next() {
    if (outbox_.empty() || !open_) {
      writing_ = false;
      return;
    }
    writing_ = true;
    ws_.text(true);
    ws_.async_write(asio::buffer(outbox_.front()), [self = shared_from_this()](const beast::error_code& error, std::size_t) {
      if (error) return self->close();
      self->queued_bytes_ -= self->outbox_.front().size();
      self->outbox_.pop_front();
      self->write_next();
    });
  }

  std::shared_ptr<WebServer::Impl> server_;
  ConnectionSlot slot_;
  websocket::stream<beast::tcp_stream> ws_;
  std::string peer_;
  std::shared_ptr<LspSession> session_;
  beast::flat_buffer input_;
  std::deque<std::string> outbox_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool open_ = true;
};

// One HTTP request: checked (Origin, token), then answered (`/status`), upgraded to a WebSocket
// (`/lsp`) or handed to the daemon as an agent stream (`/agent`).
class HttpRequest : public std::enable_shared_from_this<HttpRequest> {
 public:
  HttpRequest(std::shared_ptr<WebServer::Impl> server, tcp::socket socket, std::string peer_key, bool agents_only)
      : server_(std::move(server)), slot_(server_, std::move(peer_key)), stream_(std::move(socket)), agents_only_(agents_only) {
    boost::system::error_code error;
    const auto remote = beast::get_lowest_layer(stream_).socket().remote_endpoint(error);
    peer_ = error ? "(unknown peer)" : describe(remote);
  }

  void start() {
    parser_.header_limit(protocol::kMaxHeaderBytes);
    stream_.expires_after(kHeaderTimeout);
    http::async_read(stream_, buffer_, parser_, [self = shared_from_this()](const beast::error_code& error, std::size_t) {
      if (error) {
        if (error != http::error::end_of_stream) {
          self->server_->refusals.refused("requests not sent in time or malformed", "http " + self->peer_ + ": " + error.message());
        }
        return;  // the stream closes with this object
      }
      self->route();
    });
  }

 private:
  void route() {
    auto& request = parser_.get();
    const std::string_view target = request.target();
    const std::string_view path = target.substr(0, target.find('?'));
    // Every Origin header: a request naming an allowed one first and a foreign one after is foreign.
    for (auto [origin, last] = request.equal_range(http::field::origin); origin != last; ++origin) {
      if (server_->allowed_origin(origin->value())) continue;
      server_->refusals.refused("from a foreign Origin", "http " + peer_ + ": refused a request from origin " + loggable(origin->value()));
      return respond(http::status::forbidden, "origin not allowed");
    }
    if (path == "/agent") return challenge_agent(request);
    if (!authorized(request)) {
      server_->refusals.refused("without the token", "http " + peer_ + ": refused a request without the token");
      return respond(http::status::unauthorized, "the token of web.json is required");
    }
    slot_.proved();
    if (agents_only_ && path != "/agent") return respond(http::status::not_found, "this port only accepts agents");
    if (request.method() != http::verb::get) return respond(http::status::method_not_allowed, "only GET");
    if (path == "/status") {
      json status = server_->host.status();
      status["running"] = true;
      return respond(http::status::ok, status.dump(2), "application/json");
    }
    if (path == "/lsp") {
      if (!websocket::is_upgrade(request)) return respond(http::status::upgrade_required, "a WebSocket upgrade");
      return std::make_shared<WebSocketEditor>(server_, std::move(slot_), std::move(stream_), peer_)->start(parser_.release());
    }
    respond(http::status::not_found, "no such path");
  }

  bool authorized(const http::request<http::empty_body>& request) const {
    const std::string_view header = request[http::field::authorization];
    if (header.starts_with("Bearer ") && same_token(header.substr(7), server_->token)) return true;
    return same_token(query_parameter(request.target(), "token"), server_->token);
  }

  // `/agent`: the challenge-response of agent_handshake.h instead of the token, which an agent never
  // sends (whoever listens on a port it connects to must not learn it). The daemon proves itself in
  // the 101; the agent answers with its proof as the first line of the upgraded stream.
  void challenge_agent(const http::request<http::empty_body>& request) {
    if (request.method() != http::verb::get) return respond(http::status::method_not_allowed, "only GET");
    const std::string_view agent_nonce = request[HOTD_AGENT_NONCE_HEADER];
    if (!hotd_handshake_is_hex(agent_nonce.data(), agent_nonce.size())) {
      server_->refusals.refused("agents without a nonce", "http " + peer_ + ": refused an agent without a nonce");
      return respond(http::status::unauthorized, "an agent proves it holds the token of web.json with " HOTD_AGENT_NONCE_HEADER
                                                 " (hotd run --connect); the token itself is never sent");
    }
    if (!beast::iequals(request[http::field::upgrade], kAgentUpgrade)) {
      return respond(http::status::upgrade_required, "an upgrade to " + std::string(kAgentUpgrade));
    }
    const std::string daemon_nonce = random_hex();
    if (daemon_nonce.empty()) return respond(http::status::service_unavailable, "no randomness for a nonce");
    char daemon_proof[HOTD_PROOF_HEX + 1];
    hotd_handshake_proof(server_->token.c_str(), HOTD_PROOF_BY_DAEMON, agent_nonce.data(), daemon_nonce.c_str(), daemon_proof);
    char agent_proof[HOTD_PROOF_HEX + 1];
    hotd_handshake_proof(server_->token.c_str(), HOTD_PROOF_BY_AGENT, agent_nonce.data(), daemon_nonce.c_str(), agent_proof);
    expected_agent_proof_ = std::string(kAgentProofPrefix) + agent_proof + "\r\n";
    auto response = std::make_shared<http::response<http::empty_body>>(http::status::switching_protocols, 11);
    response->set(http::field::connection, "Upgrade");
    response->set(http::field::upgrade, kAgentUpgrade);
    response->set(HOTD_DAEMON_NONCE_HEADER, daemon_nonce);
    response->set(HOTD_DAEMON_PROOF_HEADER, daemon_proof);
    stream_.expires_after(kResponseTimeout);
    http::async_write(stream_, *response, [self = shared_from_this(), response](const beast::error_code& error, std::size_t) {
      if (error) return;
      self->stream_.expires_after(kHeaderTimeout);
      self->read_agent_proof();
    });
  }

  void read_agent_proof() {
    stream_.async_read_some(buffer_.prepare(kAgentProofLineBytes), [self = shared_from_this()](const beast::error_code& error,
                                                                                               std::size_t size) {
      self->buffer_.commit(size);
      const std::string_view received(static_cast<const char*>(self->buffer_.data().data()), self->buffer_.size());
      const std::string_view& expected = self->expected_agent_proof_;
      if (received.size() < expected.size() && !error) return self->read_agent_proof();
      if (received.size() < expected.size() ||
          !hotd_handshake_equal(received.data(), expected.data(), expected.size())) {
        self->server_->refusals.refused("agents without the proof",
                                        "http " + self->peer_ + ": refused an agent that did not prove it holds the token" +
                                            (received.empty() ? " (it closed the connection: another token?)" : ""));
        return;  // the stream closes with this object
      }
      self->buffer_.consume(expected.size());
      self->slot_.proved();
      self->adopt_agent();
    });
  }

  // Proven: the socket leaves Beast; from here it carries LSP base frames, like the Unix socket.
  void adopt_agent() {
    stream_.expires_never();
    auto& socket = stream_.socket();
    boost::system::error_code ignored;
    socket.set_option(asio::socket_base::keep_alive(true), ignored);  // a vanished peer is noticed
    socket.set_option(tcp::no_delay(true), ignored);
    const std::string buffered = beast::buffers_to_string(buffer_.data());
    server_->host.adopt_agent(socket.release(), buffered, peer_);
  }

  void respond(http::status status, std::string body, const char* content_type = "text/plain") {
    auto response = std::make_shared<http::response<http::string_body>>(status, 11);
    response->set(http::field::server, "hotd");
    response->set(http::field::content_type, content_type);
    response->set(http::field::cache_control, "no-store");
    if (status == http::status::unauthorized) response->set(http::field::www_authenticate, "Bearer");
    response->body() = std::move(body);
    if (response->body().back() != '\n') response->body() += '\n';
    response->keep_alive(false);
    response->prepare_payload();
    stream_.expires_after(kResponseTimeout);
    http::async_write(stream_, *response, [self = shared_from_this(), response](const beast::error_code&, std::size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  std::shared_ptr<WebServer::Impl> server_;
  ConnectionSlot slot_;  // handed to the WebSocket on an upgrade
  beast::tcp_stream stream_;
  bool agents_only_;
  std::string peer_;
  beast::flat_buffer buffer_;
  http::request_parser<http::empty_body> parser_;
  std::string expected_agent_proof_;  // the line an agent must send after the 101
};

}  // namespace

// Over --max-connections, nobody is admitted. Below it, connections that have not proved the token
// yet are limited per peer, and those of other uids (or from elsewhere) to half of it: the other half
// stays for connections that proved the token and for the token holder's own uid, whatever others
// keep half-open.
void WebServer::Impl::admit(tcp::socket socket, bool agents_only) {
  const std::size_t limit = options.max_connections;
  if (open_connections >= limit) {
    return refusals.refused("connections over " + std::to_string(limit) + " (--max-connections)",
                            "web: refused a connection: too many connections (" + std::to_string(limit) +
                                ", hotd serve --max-connections)");
  }
  const std::size_t unproven_share = std::max<std::size_t>(1, limit / 2);
  const std::size_t per_peer = std::min(kMaxUnprovenPerPeer, unproven_share);
  Peer peer = identify(socket);
  const auto from_peer = unproven_by_peer.find(peer.key);
  if (from_peer != unproven_by_peer.end() && from_peer->second >= per_peer) {
    return refusals.refused("connections over " + std::to_string(per_peer) + " unproven from one peer",
                            "web: refused a connection from " + peer.key + ": it has " + std::to_string(from_peer->second) +
                                " connections open that have not proved the token");
  }
  if (!peer.same_uid && unproven_connections >= unproven_share) {
    return refusals.refused("connections over half of --max-connections unproven",
                            "web: refused a connection from " + peer.key + ": connections that have not proved the token fill "
                            "half of --max-connections (" + std::to_string(limit) + "); the rest is kept for the token holder");
  }
  std::make_shared<HttpRequest>(shared_from_this(), std::move(socket), std::move(peer.key), agents_only)->start();
}

void WebServer::Impl::accept(Listener& listener) {
  listener.acceptor.async_accept([self = shared_from_this(), &listener](const boost::system::error_code& error,
                                                                         tcp::socket socket) {
    if (self->stopped) return;
    if (!error) self->admit(std::move(socket), listener.agents_only);
    if (error == asio::error::operation_aborted) return;
    if (!error) {
      self->accept_failing = false;
      return self->accept(listener);
    }
    // Out of descriptors, typically: wait for some to close rather than spin.
    if (!self->accept_failing) self->host.log("web: accepting a connection failed: " + error.message() + "; retrying every 100 ms");
    self->accept_failing = true;
    auto retry = std::make_shared<asio::steady_timer>(self->io, std::chrono::milliseconds(100));
    retry->async_wait([self, retry, &listener](const boost::system::error_code&) {
      if (!self->stopped) self->accept(listener);
    });
  });
}

bool parse_endpoint(const std::string& text, std::string& address, unsigned short& port, std::string& error) {
  std::string port_text = text;
  address = "127.0.0.1";
  const auto colon = text.rfind(':');
  if (colon != std::string::npos) {
    address = text.substr(0, colon);
    if (address.size() > 2 && address.front() == '[' && address.back() == ']') address = address.substr(1, address.size() - 2);
    port_text = text.substr(colon + 1);
  }
  boost::system::error_code bad_address;
  asio::ip::make_address(address, bad_address);
  char* end = nullptr;
  const long number = std::strtol(port_text.c_str(), &end, 10);
  if (bad_address || port_text.empty() || *end != '\0' || number < 0 || number > 65535) {
    error = "expected ADDR:PORT (an IP address, port 0 to 65535; 0 lets the system choose), got '" + text + "'";
    return false;
  }
  port = static_cast<unsigned short>(number);
  return true;
}

bool is_loopback_address(const std::string& address) {
  boost::system::error_code error;
  const auto parsed = asio::ip::make_address(address, error);
  return !error && parsed.is_loopback();
}

std::unique_ptr<WebServer> WebServer::start(asio::io_context& io, WebHost& host, const WebOptions& options,
                                            std::string& error) {
  auto impl = std::make_shared<Impl>(io, host, options);
  impl->token = random_hex();
  if (impl->token.empty()) {
    error = "the system gave no random bytes for the web token";
    return nullptr;
  }
  json listen = json::array();
  std::vector<std::pair<std::string, bool>> endpoints = {{options.address + ":0", false}};
  for (const std::string& endpoint : options.agent_listen) endpoints.emplace_back(endpoint, true);
  for (const auto& [text, agents_only] : endpoints) {
    std::string address;
    unsigned short port = 0;
    if (!parse_endpoint(text, address, port, error)) return nullptr;
    const tcp::endpoint endpoint(asio::ip::make_address(address), port);
    boost::system::error_code failure;
    tcp::acceptor acceptor(io);
    acceptor.open(endpoint.protocol(), failure);
    if (!failure) acceptor.set_option(asio::socket_base::reuse_address(true), failure);
    if (!failure) acceptor.bind(endpoint, failure);
    if (!failure) acceptor.listen(asio::socket_base::max_listen_connections, failure);
    if (failure) {
      error = "cannot listen on " + text + ": " + failure.message();
      return nullptr;
    }
    const std::string bound = describe(acceptor.local_endpoint());
    if (agents_only) listen.push_back(bound);
    impl->listeners.push_back({std::move(acceptor), agents_only});
  }
  const auto& editors = impl->listeners.front().acceptor.local_endpoint();
  const json info = {{"pid", ::getpid()},
                     {"address", editors.address().to_string()},
                     {"port", editors.port()},
                     {"token", impl->token},
                     {"agent_listen", listen}};
  if (!write_info(options.info_path, info, error)) return nullptr;
  for (auto& listener : impl->listeners) impl->accept(listener);
  host.log("web: status and editors (WebSocket /lsp) on " + describe(editors) + ", token in " + options.info_path);
  for (const auto& endpoint : listen) host.log("web: agents on " + endpoint.get<std::string>());
  return std::unique_ptr<WebServer>(new WebServer(std::move(impl)));
}

WebServer::~WebServer() { stop(); }

void WebServer::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  for (auto& listener : impl_->listeners) {
    boost::system::error_code ignored;
    listener.acceptor.close(ignored);
  }
  impl_->refusals.flush();
  for (const auto& weak : std::set(impl_->websockets)) {
    if (const auto editor = std::static_pointer_cast<WebSocketEditor>(weak.lock())) editor->close();
  }
}

}  // namespace hotd::server
