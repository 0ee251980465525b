// spikeforge virtual board, Ethernet link: the Verilated AcquisitionSystem (link "ethernet"),
// its GMII frames served as real UDP datagrams on loopback.
//
// Clocks: `clk` at --clock-hz and `link_clk` / `eth_rx_clk` (one clock here) at --link-hz,
// interleaved in simulated time with the exact ratio of the rates (integer time base), so the
// link's capacity relative to the acquisition is the hardware's. No Python runs per cycle.
//
// Board -> host: the bytes of `gmii_tx_*` between `gmii_tx_en` edges are one frame: preamble
// and SFD stripped, FCS checked (`gmii_tx_er` or a wrong FCS: counted, dropped), Ethernet /
// IPv4 (header checksum) / UDP parsed, IPv4 fragments reassembled. Each UDP payload leaves
// as one real datagram on 127.0.0.1: from the data socket if its source port is the board's
// data port, from the control socket if it is the control port, to 127.0.0.1 at the frame's
// UDP destination port (the host's real port, which the board learned from its commands).
//
// Host -> board: each datagram that arrives on the control (data) socket is wrapped into an
// Ethernet/IPv4/UDP frame to the board's MAC, IP and control (data) port, from a fixed host
// MAC and IP and the host's real UDP source port (UDP checksum 0; IPv4 fragments above
// 1480 bytes of IP payload), and driven on `gmii_rx_*` as preamble, SFD, frame (padded to
// 60 bytes), FCS, then at least 12 idle cycles.
//
// --pcap FILE: every good frame, both directions, in a classic pcap file (nanosecond
// timestamps, LINKTYPE_ETHERNET, FCS stripped), stamped with the simulated time of its last
// byte on the wire (time 0: the first cycle after the power-on reset).
//
// Usage:
//   vboard --port N [--cycles C] --clock-hz F [--link-hz 125000000]
//          --board-mac HEX --board-ip A.B.C.D --board-control-port P --board-data-port P
//          --host-mac HEX --host-ip A.B.C.D [--pcap FILE] [--stats FILE] [--realtime 1]
//          [RHD options, as main.cpp] [flash options, as main.cpp]
// Prints "listening on udp data D control N" (N: the control socket's real port, D: the data
// socket's), waits for the host's first datagram (unless --cycles is given), then runs until
// SIGTERM/SIGINT, C cycles of `clk`, or its parent process is gone; prints a line of
// statistics.

#include "Vtop.h"
#include "Vtop___024root.h"
#include "verilated.h"
#include "rhd_board.h"
#include "spi_flash.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <memory>
#include <netinet/in.h>
#include <numeric>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <tuple>
#include <type_traits>
#include <unistd.h>
#include <vector>

namespace {

struct Options {
    int port = 0;
    uint64_t cycles = 0;
    uint64_t clock_hz = 12000000;
    uint64_t link_hz = 125000000;
    uint64_t board_mac = 0, host_mac = 0;
    uint32_t board_ip = 0, host_ip = 0;
    int board_control_port = 5131, board_data_port = 5130;
    std::string pcap, stats_file;
    bool realtime = false;
};

uint32_t parse_ip(const char *text) {
    in_addr address{};
    if (inet_pton(AF_INET, text, &address) != 1) {
        std::fprintf(stderr, "vboard: %s is not an IPv4 address\n", text);
        std::exit(2);
    }
    return ntohl(address.s_addr);
}

Options parse(int argc, char **argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string key = argv[i];
        const char *value = argv[i + 1];
        if (key == "--port") o.port = std::atoi(value);
        else if (key == "--cycles") o.cycles = std::strtoull(value, nullptr, 10);
        else if (key == "--clock-hz") o.clock_hz = std::strtoull(value, nullptr, 10);
        else if (key == "--link-hz") o.link_hz = std::strtoull(value, nullptr, 10);
        else if (key == "--board-mac") o.board_mac = std::strtoull(value, nullptr, 16);
        else if (key == "--host-mac") o.host_mac = std::strtoull(value, nullptr, 16);
        else if (key == "--board-ip") o.board_ip = parse_ip(value);
        else if (key == "--host-ip") o.host_ip = parse_ip(value);
        else if (key == "--board-control-port") o.board_control_port = std::atoi(value);
        else if (key == "--board-data-port") o.board_data_port = std::atoi(value);
        else if (key == "--pcap") o.pcap = value;
        else if (key == "--stats") o.stats_file = value;
        else if (key == "--realtime") o.realtime = std::atoi(value) != 0;
        else if (parse_rhd_option(key, value)) {}
        else if (parse_flash_option(key, value)) {}
        else { std::fprintf(stderr, "vboard: unknown option %s\n", key.c_str()); std::exit(2); }
    }
    if (o.clock_hz == 0 || o.link_hz == 0) {
        std::fprintf(stderr, "vboard: --clock-hz and --link-hz must be > 0\n");
        std::exit(2);
    }
    return o;
}

// ---- bytes ----------------------------------------------------------------------------------
uint32_t crc32_table[256];
void init_crc32() {
    for (uint32_t n = 0; n < 256; ++n) {
        uint32_t c = n;
        for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc32_table[n] = c;
    }
}
uint32_t crc32(const uint8_t *data, size_t n) {      // as zlib.crc32: the Ethernet FCS
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; ++i) c = crc32_table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}
uint16_t ipv4_checksum(const uint8_t *header, size_t n) {
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < n; i += 2) sum += (header[i] << 8) | header[i + 1];
    while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}
inline uint16_t get16(const uint8_t *p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t get32(const uint8_t *p) {
    return static_cast<uint32_t>(p[0]) << 24 | p[1] << 16 | p[2] << 8 | p[3];
}
inline void put16(std::vector<uint8_t> &v, uint16_t x) { v.push_back(x >> 8); v.push_back(x & 0xFF); }
inline void put32(std::vector<uint8_t> &v, uint32_t x) { put16(v, x >> 16); put16(v, x & 0xFFFF); }
inline void put_mac(std::vector<uint8_t> &v, uint64_t mac) {
    for (int i = 5; i >= 0; --i) v.push_back((mac >> (8 * i)) & 0xFF);
}

constexpr size_t kEthHeader = 14, kIpHeader = 20, kUdpHeader = 8, kMinFrame = 60;
constexpr size_t kFragmentPayload = 1480;     // firmware/ethernet.py FRAGMENT_PAYLOAD_BYTES
constexpr int kInterFrameGap = 12;

struct Stats {
    uint64_t frames_out = 0, datagrams_out = 0, fragments_out = 0, bytes_out = 0;
    uint64_t fcs_errors = 0, tx_errors = 0, ip_errors = 0, reassembly_drops = 0;
    uint64_t arp_out = 0, icmp_out = 0, other_out = 0, unknown_port = 0, send_errors = 0;
    uint64_t frames_in = 0, datagrams_in = 0, bytes_in = 0;
};
Stats stats;

// ---- pcap ----------------------------------------------------------------------------------
class Pcap {
  public:
    bool open(const std::string &path) {
        file_ = std::fopen(path.c_str(), "wb");
        if (!file_) return false;
        const uint32_t header[6] = {0xA1B23C4Du, 0x00040002u, 0, 0, 65535, 1};
        // magic (nanosecond timestamps), version 2.4, thiszone, sigfigs, snaplen, ETHERNET
        std::fwrite(header, sizeof header, 1, file_);
        return true;
    }
    void write(uint64_t ns, const uint8_t *frame, size_t n) {
        if (!file_) return;
        const uint32_t record[4] = {static_cast<uint32_t>(ns / 1000000000u),
                                    static_cast<uint32_t>(ns % 1000000000u),
                                    static_cast<uint32_t>(n), static_cast<uint32_t>(n)};
        std::fwrite(record, sizeof record, 1, file_);
        std::fwrite(frame, 1, n, file_);
    }
    void close() { if (file_) { std::fclose(file_); file_ = nullptr; } }
  private:
    FILE *file_ = nullptr;
};
Pcap pcap;

// ---- the loopback sockets -------------------------------------------------------------------
int bind_udp(int port) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr *>(&address), sizeof address) != 0) {
        std::perror("vboard: cannot bind a UDP socket on 127.0.0.1");
        std::exit(3);
    }
    int size = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    return fd;
}
int local_port(int fd) {
    sockaddr_in address{};
    socklen_t length = sizeof address;
    getsockname(fd, reinterpret_cast<sockaddr *>(&address), &length);
    return ntohs(address.sin_port);
}

// ---- host -> board: datagrams into frames on gmii_rx ----------------------------------------
class RxDriver {
  public:
    RxDriver(const Options &o) : o_(o) {}

    // One datagram from the host's UDP `source_port` to the board's `board_port`.
    void push_datagram(const uint8_t *payload, size_t n, uint16_t source_port, int board_port) {
        std::vector<uint8_t> ip_payload;
        put16(ip_payload, source_port);
        put16(ip_payload, static_cast<uint16_t>(board_port));
        put16(ip_payload, static_cast<uint16_t>(kUdpHeader + n));
        put16(ip_payload, 0);                               // no UDP checksum
        ip_payload.insert(ip_payload.end(), payload, payload + n);
        const uint16_t id = ip_id_++;
        for (size_t offset = 0; offset < ip_payload.size(); offset += kFragmentPayload) {
            const size_t part = std::min(kFragmentPayload, ip_payload.size() - offset);
            const bool more = offset + part < ip_payload.size();
            std::vector<uint8_t> frame;
            put_mac(frame, o_.board_mac);
            put_mac(frame, o_.host_mac);
            put16(frame, 0x0800);
            const size_t ip_start = frame.size();
            frame.push_back(0x45); frame.push_back(0);
            put16(frame, static_cast<uint16_t>(kIpHeader + part));
            put16(frame, id);
            put16(frame, static_cast<uint16_t>((more ? 0x2000 : 0) | (offset / 8)));
            frame.push_back(64); frame.push_back(17);
            put16(frame, 0);
            put32(frame, o_.host_ip);
            put32(frame, o_.board_ip);
            const uint16_t checksum = ipv4_checksum(frame.data() + ip_start, kIpHeader);
            frame[ip_start + 10] = checksum >> 8;
            frame[ip_start + 11] = checksum & 0xFF;
            frame.insert(frame.end(), ip_payload.begin() + offset, ip_payload.begin() + offset + part);
            if (frame.size() < kMinFrame) frame.resize(kMinFrame, 0);
            frames_.push_back(std::move(frame));
        }
    }

    // The GMII receive inputs for the next eth_rx cycle (bit 8: rx_dv, bits 7..0: rx_data).
    // `now_ns`: that cycle's time, for the capture.
    uint16_t clock(uint64_t now_ns) {
        if (wire_.empty()) {
            if (gap_ > 0) { --gap_; return 0; }
            if (frames_.empty()) return 0;
            std::vector<uint8_t> &frame = frames_.front();
            for (int i = 0; i < 7; ++i) wire_.push_back(0x55);
            wire_.push_back(0xD5);
            wire_.insert(wire_.end(), frame.begin(), frame.end());
            const uint32_t fcs = crc32(frame.data(), frame.size());
            for (int i = 0; i < 4; ++i) wire_.push_back((fcs >> (8 * i)) & 0xFF);
            current_ = std::move(frame);
            frames_.pop_front();
        }
        const uint8_t byte = wire_.front();
        wire_.pop_front();
        if (wire_.empty()) {                   // the frame's last byte: capture it, then idle
            pcap.write(now_ns, current_.data(), current_.size());
            ++stats.frames_in;
            gap_ = kInterFrameGap;
        }
        return 0x100 | byte;
    }

  private:
    const Options &o_;
    std::deque<std::vector<uint8_t>> frames_;
    std::deque<uint8_t> wire_;
    std::vector<uint8_t> current_;
    int gap_ = 0;
    uint16_t ip_id_ = 0;
};

// ---- board -> host: frames from gmii_tx into datagrams ----------------------------------------
class TxCollector {
  public:
    TxCollector(const Options &o, int control_fd, int data_fd)
        : o_(o), control_fd_(control_fd), data_fd_(data_fd) { wire_.reserve(2048); }

    // Called after each rising edge of link_clk with the transmit outputs.
    void clock(int tx_en, int tx_er, uint8_t tx_data, uint64_t now_ns) {
        if (tx_en) {
            wire_.push_back(tx_data);
            error_ |= tx_er != 0;
            last_ns_ = now_ns;
        } else if (!wire_.empty()) {
            finish(last_ns_);
            wire_.clear();
            error_ = false;
        }
    }

  private:
    void finish(uint64_t ns) {
        if (error_) { ++stats.tx_errors; return; }
        size_t start = 0;
        while (start < wire_.size() && wire_[start] == 0x55) ++start;
        if (start == wire_.size() || wire_[start] != 0xD5) { ++stats.tx_errors; return; }
        const uint8_t *frame = wire_.data() + start + 1;
        const size_t n = wire_.size() - start - 1;
        if (n < kMinFrame + 4 || crc32(frame, n - 4) != (static_cast<uint32_t>(frame[n - 4]) |
                frame[n - 3] << 8 | frame[n - 2] << 16 | static_cast<uint32_t>(frame[n - 1]) << 24)) {
            ++stats.fcs_errors;
            return;
        }
        pcap.write(ns, frame, n - 4);
        ++stats.frames_out;
        parse_ethernet(frame, n - 4);
    }

    void parse_ethernet(const uint8_t *frame, size_t n) {
        const uint16_t type = get16(frame + 12);
        if (type == 0x0806) { ++stats.arp_out; return; }
        if (type != 0x0800) { ++stats.other_out; return; }
        const uint8_t *ip = frame + kEthHeader;
        const size_t room = n - kEthHeader;
        const size_t header = (ip[0] & 0x0F) * 4u;
        const size_t total = get16(ip + 2);
        if ((ip[0] >> 4) != 4 || header < kIpHeader || total < header || total > room ||
            ipv4_checksum(ip, header) != 0) {
            ++stats.ip_errors;
            return;
        }
        if (ip[9] == 1) { ++stats.icmp_out; return; }
        if (ip[9] != 17) { ++stats.other_out; return; }
        ++stats.fragments_out;
        const uint16_t flags = get16(ip + 6);
        const bool more = flags & 0x2000;
        const size_t offset = (flags & 0x1FFF) * 8u;
        const uint8_t *part = ip + header;
        const size_t length = total - header;
        if (!more && offset == 0) { deliver(part, length); return; }
        auto key = std::make_tuple(get32(ip + 12), get32(ip + 16), get16(ip + 4));
        Assembly &assembly = assemblies_[key];
        if (offset + length > 65535) { ++stats.ip_errors; assemblies_.erase(key); return; }
        if (assembly.data.size() < offset + length) assembly.data.resize(offset + length);
        std::memcpy(assembly.data.data() + offset, part, length);
        assembly.received += length;
        if (!more) assembly.total = offset + length;
        if (assembly.total && assembly.received == assembly.total) {
            deliver(assembly.data.data(), assembly.total);
            assemblies_.erase(key);
        } else if (assembly.total && assembly.received > assembly.total) {
            ++stats.reassembly_drops;           // overlapping fragments: not from this board
            assemblies_.erase(key);
        }
        while (assemblies_.size() > 64) {       // fragments that never completed
            ++stats.reassembly_drops;
            assemblies_.erase(assemblies_.begin());
        }
    }

    void deliver(const uint8_t *udp, size_t n) {
        if (n < kUdpHeader || get16(udp + 4) < kUdpHeader || get16(udp + 4) > n) {
            ++stats.ip_errors;
            return;
        }
        const int source = get16(udp), destination = get16(udp + 2);
        int fd = source == o_.board_data_port ? data_fd_
                 : source == o_.board_control_port ? control_fd_ : -1;
        if (fd < 0) { ++stats.unknown_port; return; }
        sockaddr_in host{};
        host.sin_family = AF_INET;
        host.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        host.sin_port = htons(destination);
        const size_t payload = get16(udp + 4) - kUdpHeader;
        if (sendto(fd, udp + kUdpHeader, payload, 0, reinterpret_cast<sockaddr *>(&host),
                   sizeof host) < 0) {
            ++stats.send_errors;               // host gone (port unreachable) or its buffer full
            return;
        }
        ++stats.datagrams_out;
        stats.bytes_out += payload;
    }

    struct Assembly { std::vector<uint8_t> data; size_t received = 0, total = 0; };
    const Options &o_;
    int control_fd_, data_fd_;
    std::vector<uint8_t> wire_;
    bool error_ = false;
    uint64_t last_ns_ = 0;
    std::map<std::tuple<uint32_t, uint32_t, uint16_t>, Assembly> assemblies_;
};

// Whatever the host sent to either socket since the last call, into frames for the board.
void receive_datagrams(int fd, int board_port, RxDriver &rx) {
    static uint8_t buffer[65536];
    while (true) {
        sockaddr_in source{};
        socklen_t length = sizeof source;
        ssize_t n = recvfrom(fd, buffer, sizeof buffer, MSG_DONTWAIT,
                             reinterpret_cast<sockaddr *>(&source), &length);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;                             // EAGAIN, or an ICMP error from a gone host
        }
        ++stats.datagrams_in;
        stats.bytes_in += static_cast<size_t>(n);
        rx.push_datagram(buffer, static_cast<size_t>(n), ntohs(source.sin_port), board_port);
    }
}

// ---- clocks --------------------------------------------------------------------------------
// As main.cpp: no logic reads a clock itself, so after a rising edge the harness only records
// that the clock is low again (Verilator's remembered trigger value) instead of a second
// eval(); if this Verilator names the remembered value otherwise, a real eval() is done.
#define SPIKEFORGE_TRIGGER(NAME)                                                                  \
    template <typename Root, typename = void> struct HasTrigger_##NAME : std::false_type {};     \
    template <typename Root>                                                                      \
    struct HasTrigger_##NAME<Root, std::void_t<decltype(std::declval<Root &>()                   \
                                                     .__Vtrigprevexpr___TOP__##NAME##__0)>>      \
        : std::true_type {};                                                                   \
    template <typename Root> inline bool lower_trigger_##NAME(Root *root) {                      \
        if constexpr (HasTrigger_##NAME<Root>::value) {                                         \
            root->__Vtrigprevexpr___TOP__##NAME##__0 = 0;                                        \
            return false;                                                                         \
        } else {                                                                                  \
            return true;                                                                          \
        }                                                                                         \
    }
SPIKEFORGE_TRIGGER(clk)
SPIKEFORGE_TRIGGER(link_clk)
SPIKEFORGE_TRIGGER(eth_rx_clk)

template <typename Top, typename = void> struct HasEthRxClock : std::false_type {};
template <typename Top>
struct HasEthRxClock<Top, std::void_t<decltype(std::declval<Top &>().eth_rx_clk)>> : std::true_type {};

template <typename Top> inline void set_eth_rx_clk(Top *top, int value) {
    if constexpr (HasEthRxClock<Top>::value) top->eth_rx_clk = value;
}

// Lower the clocks that rose; returns whether an eval() is still needed to record it.
inline bool lower_clocks(Vtop *top, bool clk, bool link) {
    bool need_eval = false;
    auto *root = top->rootp;
    if (clk) {
        top->clk = 0;
        need_eval |= lower_trigger_clk(root);
    }
    if (link) {
        top->link_clk = 0;
        need_eval |= lower_trigger_link_clk(root);
        if constexpr (HasEthRxClock<Vtop>::value) {
            set_eth_rx_clk(top, 0);
            need_eval |= lower_trigger_eth_rx_clk(root);
        }
    }
    return need_eval;
}

volatile std::sig_atomic_t stop_requested = 0;
void on_signal(int) { stop_requested = 1; }

}  // namespace

int main(int argc, char **argv) {
    Options options = parse(argc, argv);
    flash_start<Vtop>();       // keyed builds: the configuration flash (spi_flash.h)
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGPIPE, SIG_IGN);
    init_crc32();
    if (!options.pcap.empty() && !pcap.open(options.pcap)) {
        std::perror("vboard: cannot write the capture");
        return 2;
    }
    const int control_fd = bind_udp(options.port);
    const int data_fd = bind_udp(0);
    std::printf("listening on udp data %d control %d\n", local_port(data_fd), local_port(control_fd));
    std::fflush(stdout);

    // Nothing leaves the board until a host is learned: wait for one (not in a timed run).
    if (options.cycles == 0) {
        pollfd fds[2] = {{control_fd, POLLIN, 0}, {data_fd, POLLIN, 0}};
        const pid_t parent = getppid();
        while (!stop_requested && getppid() == parent && poll(fds, 2, 200) <= 0) {}
    }

    auto context = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vtop>(context.get());
    top->clk = 0;
    top->link_clk = 0;
    set_eth_rx_clk(top.get(), 0);
    top->gmii_rx_dv = 0;
    top->gmii_rx_er = 0;
    top->gmii_rx_data = 0;
    rhd_start();
    // The design holds each domain in reset for its first 4 rising edges (top.py).
    for (int i = 0; i < 8; ++i) {
        top->clk = !top->clk;
        top->link_clk = top->clk;
        set_eth_rx_clk(top.get(), top->clk);
        top->eval();
    }

    RxDriver rx(options);
    TxCollector tx(options, control_fd, data_fd);
    // Time in units of 1 / (clock_hz * link_hz / g): clk rises every link_hz / g units, the
    // link clock every clock_hz / g units.
    const uint64_t g = std::gcd(options.clock_hz, options.link_hz);
    const uint64_t clk_period = options.link_hz / g, link_period = options.clock_hz / g;
    uint64_t next_clk = 0, next_link = 0, cycle = 0, link_cycle = 0;
    const double ns_per_link_cycle = 1e9 / static_cast<double>(options.link_hz);
    const auto started = std::chrono::steady_clock::now();
    const std::clock_t cpu_started = std::clock();
    const uint64_t batch = 1 << 14;   // link cycles between socket polls

    // No client connection ends this board (UDP): it also stops when its parent is gone, so
    // a crashed caller leaves no simulation running.
    const pid_t parent = getppid();
    while (!stop_requested && (options.cycles == 0 || cycle < options.cycles)) {
        if (getppid() != parent) break;
        receive_datagrams(control_fd, options.board_control_port, rx);
        receive_datagrams(data_fd, options.board_data_port, rx);
        const uint64_t batch_end = link_cycle + batch;
        while (link_cycle < batch_end && (options.cycles == 0 || cycle < options.cycles)) {
            const bool clk_rises = next_clk <= next_link;
            const bool link_rises = next_link <= next_clk;
            const uint64_t now_ns = static_cast<uint64_t>(link_cycle * ns_per_link_cycle);
            if (link_rises) {
                const uint16_t gmii = rx.clock(now_ns);
                top->gmii_rx_dv = gmii >> 8;
                top->gmii_rx_data = gmii & 0xFF;
                top->link_clk = 1;
                set_eth_rx_clk(top.get(), 1);
            }
            if (clk_rises) {
                rhd_before_edge(top.get(), cycle);
                flash_before_edge(top.get());
                top->clk = 1;
            }
            top->eval();
            if (clk_rises) {
                rhd_after_edge(top.get(), cycle);
                flash_after_edge(top.get());
                ++cycle;
                next_clk += clk_period;
            }
            if (link_rises) {
                tx.clock(top->gmii_tx_en, top->gmii_tx_er, top->gmii_tx_data, now_ns);
                ++link_cycle;
                next_link += link_period;
            }
            if (lower_clocks(top.get(), clk_rises, link_rises)) top->eval();
        }
        if (options.realtime) {
            auto due = started + std::chrono::duration<double>(cycle / static_cast<double>(options.clock_hz));
            std::this_thread::sleep_until(due);
        }
    }
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const double cpu = static_cast<double>(std::clock() - cpu_started) / CLOCKS_PER_SEC;
    char text[1024];
    std::snprintf(text, sizeof text,
                  "cycles %llu link_cycles %llu wall_s %.3f cycles_per_s %.0f cpu_s %.3f "
                  "cycles_per_cpu_s %.0f frames_out %llu datagrams_out %llu fragments_out %llu "
                  "bytes_out %llu fcs_errors %llu tx_errors %llu ip_errors %llu "
                  "reassembly_drops %llu unknown_port %llu send_errors %llu arp_out %llu "
                  "icmp_out %llu other_out %llu frames_in %llu datagrams_in %llu bytes_in %llu",
                  (unsigned long long)cycle, (unsigned long long)link_cycle, wall,
                  wall > 0 ? cycle / wall : 0.0, cpu, cpu > 0 ? cycle / cpu : 0.0,
                  (unsigned long long)stats.frames_out, (unsigned long long)stats.datagrams_out,
                  (unsigned long long)stats.fragments_out, (unsigned long long)stats.bytes_out,
                  (unsigned long long)stats.fcs_errors, (unsigned long long)stats.tx_errors,
                  (unsigned long long)stats.ip_errors, (unsigned long long)stats.reassembly_drops,
                  (unsigned long long)stats.unknown_port, (unsigned long long)stats.send_errors,
                  (unsigned long long)stats.arp_out, (unsigned long long)stats.icmp_out,
                  (unsigned long long)stats.other_out, (unsigned long long)stats.frames_in,
                  (unsigned long long)stats.datagrams_in, (unsigned long long)stats.bytes_in);
    const std::string line = text + rhd_stats() + flash_finish<Vtop>() + "\n";
    std::fputs(line.c_str(), stdout);
    std::fflush(stdout);
    if (!options.stats_file.empty()) {
        if (FILE *f = std::fopen(options.stats_file.c_str(), "w")) { std::fputs(line.c_str(), f); std::fclose(f); }
    }
    pcap.close();
    close(control_fd);
    close(data_fd);
    top->final();
    return 0;
}
