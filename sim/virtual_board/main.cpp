// spikeforge virtual board: the Verilated AcquisitionSystem, its UART bridged to TCP.
//
// Runs the design cycle by cycle in C++ (no Python in the loop), decodes the 8N1 line
// `uart_tx` at bit level exactly as a USB-serial bridge would, and writes every byte to
// the one TCP client it accepts. Usage:
//
//   vboard --port N --divisor D [--cycles C] [--realtime CLOCK_HZ] [--stats FILE]
//          [--evals-per-cycle 1|2] [--byte-period NUM/DEN] [--byte-log FILE]
//          [RHD options, when built with -DSPIKEFORGE_RHD_LINES=L: see rhd_options below]
//          [--flash-file PATH ...: keyed builds' configuration flash, see spi_flash.h]
//
// Prints "listening on PORT" (PORT is the real port when N is 0) and then waits for a
// client. Runs until the client disconnects or C cycles have run; then prints a line of
// statistics (cycles, bytes, wall seconds) to stdout and to FILE if given.
//
// A direct-link build (top.py, direct=True: ports link_tx_* and link_rx_* instead of a
// working uart_tx/uart_rx) runs the design on its own, slower clock and takes the framer's
// bytes from link_tx_* and gives the host's to link_rx_* one per NUM/DEN design cycles
// (--byte-period: the board's UART byte time in the design's cycles), each direction a
// token bucket of one byte: a byte leaves when the board's UART would have been free to take it, so
// frames back up in the framer and drop exactly when the board's link is too slow.
//
// --byte-log FILE: for every byte sent to the host, the cycle its last bit reaches the
// host's end of the link (uint64, little-endian), for latency measurements.

#include "Vtop.h"
#include "Vtop___024root.h"
#include "verilated.h"
#include "rhd_board.h"
#include "spi_flash.h"

#include <arpa/inet.h>
#include <chrono>
#include <cerrno>
#include <csignal>
#include <ctime>
#include <memory>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <deque>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <type_traits>
#include <utility>
#include <unistd.h>
#include <vector>

namespace {

struct Options {
    int port = 0;
    int divisor = 4;
    uint64_t cycles = 0;          // 0: until the client goes away
    double realtime_hz = 0;       // 0: as fast as possible
    std::string stats_file;
    int evals_per_cycle = 1;      // 2: also eval() after the falling edge (for comparison)
    uint64_t byte_period_num = 0; // direct-link builds: design cycles per link byte, NUM/DEN
    uint64_t byte_period_den = 1;
    std::string byte_log;
};


Options parse(int argc, char **argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string key = argv[i];
        const char *value = argv[i + 1];
        if (key == "--port") o.port = std::atoi(value);
        else if (key == "--divisor") o.divisor = std::atoi(value);
        else if (key == "--cycles") o.cycles = std::strtoull(value, nullptr, 10);
        else if (key == "--realtime") o.realtime_hz = std::atof(value);
        else if (key == "--stats") o.stats_file = value;
        else if (key == "--evals-per-cycle") o.evals_per_cycle = std::atoi(value);
        else if (key == "--byte-period") {
            char *end = nullptr;
            o.byte_period_num = std::strtoull(value, &end, 10);
            if (end && *end == '/') o.byte_period_den = std::strtoull(end + 1, nullptr, 10);
        }
        else if (key == "--byte-log") o.byte_log = value;
        else if (parse_rhd_option(key, value)) {}
        else if (parse_flash_option(key, value)) {}
        else { std::fprintf(stderr, "vboard: unknown option %s\n", key.c_str()); std::exit(2); }
    }
    if (o.divisor < 1) { std::fprintf(stderr, "vboard: --divisor must be >= 1\n"); std::exit(2); }
    return o;
}

// Bit-level 8N1 receiver: waits for a falling edge, samples every bit in its middle.
class UartReceiver {
  public:
    explicit UartReceiver(int divisor) : divisor_(divisor) {}
    // Called once per clock cycle with the line level; returns true when `byte` is complete.
    bool clock(int line, uint8_t &byte) {
        if (state_ == -1) {
            bool start_bit = !line && last_;
            last_ = line;
            if (!start_bit) return false;
            state_ = 0;                          // first cycle of the start bit
            count_ = (divisor_ - 1) / 2;         // cycles from here to its middle
        }
        last_ = line;
        if (count_ > 0) { --count_; return false; }
        count_ = divisor_ - 1;
        if (state_ == 0) {                       // middle of the start bit
            if (line) { state_ = -1; framing_errors++; return false; }
            state_ = 1; shift_ = 0; return false;
        }
        if (state_ <= 8) { shift_ |= (line & 1) << (state_ - 1); state_++; return false; }
        state_ = -1;                             // middle of the stop bit
        if (!line) { framing_errors++; return false; }
        byte = shift_;
        return true;
    }
    uint64_t framing_errors = 0;

  private:
    int divisor_;
    int state_ = -1;
    int count_ = 0;
    int last_ = 1;
    uint8_t shift_ = 0;
};

// ---- host -> device: the client's bytes onto uart_rx ------------------------------------
// Bit-level 8N1 transmitter, as the USB-serial bridge drives the FPGA's RX pin: each byte
// is a start bit, 8 data bits LSB first and a stop bit, `divisor` cycles each, back to back.
class UartLineDriver {
  public:
    explicit UartLineDriver(int divisor) : divisor_(divisor) {}
    void push(const uint8_t *data, size_t n) { queue_.insert(queue_.end(), data, data + n); }
    // Called once per clock cycle; returns the line level for this cycle.
    int clock() {
        if (bit_ == 10) {
            if (queue_.empty()) return 1;
            frame_ = 0x200u | (static_cast<unsigned>(queue_.front()) << 1);
            queue_.pop_front();
            bit_ = 0;
            count_ = divisor_;
        }
        int level = (frame_ >> bit_) & 1;
        if (--count_ == 0) { ++bit_; count_ = divisor_; }
        return level;
    }
    uint64_t bytes_sent = 0;

  private:
    int divisor_;
    std::deque<uint8_t> queue_;
    unsigned frame_ = 0x3FF;
    int bit_ = 10;       // 10: idle
    int count_ = 0;
};

// Moves whatever the client sent since the last call into the line driver; false when the
// client has closed its side.
bool receive_commands(int client, UartLineDriver &line, std::deque<uint8_t> *direct) {
    uint8_t buffer[4096];
    while (true) {
        ssize_t n = recv(client, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n > 0 && direct) { direct->insert(direct->end(), buffer, buffer + n); continue; }
        if (n > 0) { line.push(buffer, static_cast<size_t>(n)); line.bytes_sent += n; continue; }
        if (n == 0) return false;
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
}
// ---- end of host -> device ------------------------------------------------------------------
// -- one eval() per clock cycle ----------------------------------------------------------------
//
// Every register of the design is in the one `sync` domain, on the rising edge of `clk`, and
// no logic reads `clk` itself, so the model's only trigger is "posedge clk": an eval() after
// the falling edge runs no logic, it only records that clk is now 0 (and costs the per-eval
// overhead: trigger computation, end-of-eval bookkeeping). Recording that ourselves halves
// the eval() calls. Verilator names the remembered clock value __Vtrigprevexpr___TOP__clk__0;
// if a Verilator version names it otherwise, the harness falls back to a real eval().
template <typename Root, typename = void>
struct HasClockTrigger : std::false_type {};
template <typename Root>
struct HasClockTrigger<Root, std::void_t<decltype(std::declval<Root &>().__Vtrigprevexpr___TOP__clk__0)>>
    : std::true_type {};

// The top the Python side builds holds itself in reset (top.py); a top with a `rst` input
// (the bare AcquisitionSystem, built for speed comparisons) is reset from here.
template <typename Top, typename = void>
struct HasResetInput : std::false_type {};
template <typename Top>
struct HasResetInput<Top, std::void_t<decltype(std::declval<Top &>().rst)>> : std::true_type {};

template <typename Top>
inline void set_reset(Top *top, int value) {
    if constexpr (HasResetInput<Top>::value) top->rst = value;
}

inline void falling_edge(Vtop *top, int evals_per_cycle) {
    top->clk = 0;
    if constexpr (HasClockTrigger<Vtop___024root>::value) {
        if (evals_per_cycle == 1) { top->rootp->__Vtrigprevexpr___TOP__clk__0 = 0; return; }
    }
    top->eval();
}

// -- the direct link (direct-link builds only) ------------------------------------------------
template <typename Top, typename = void>
struct HasDirectLink : std::false_type {};
template <typename Top>
struct HasDirectLink<Top, std::void_t<decltype(std::declval<Top &>().link_tx_valid)>>
    : std::true_type {};

// One direction of the board's UART as a token bucket: `rate` credit per design cycle, a byte
// costs `cost`. While bytes follow each other the fraction of a cycle left after one byte is
// kept (a byte time need not be whole design cycles); an idle line banks no more than the
// one byte it can start at once.
struct ByteBucket {
    uint64_t rate = 0, cost = 1, credit = 0;
    bool tick() { credit += rate; return credit >= cost; }
    void settle(bool taken) {
        if (taken) credit -= cost;
        else if (credit > cost) credit = cost;
    }
};

struct DirectLink {
    ByteBucket tx, rx;
    uint64_t byte_cycles = 0;     // cycles from a byte's start to its last bit at the far end
    std::deque<uint8_t> commands;
    uint64_t commands_given = 0;
    bool tx_take = false, rx_take = false;
    uint8_t tx_byte = 0;

    void setup(uint64_t period_num, uint64_t period_den) {
        tx.rate = rx.rate = period_den;
        tx.cost = rx.cost = period_num;
        tx.credit = rx.credit = period_num;
        byte_cycles = (period_num + period_den - 1) / period_den;
    }
    // Before the rising edge: offer the link's readiness and the next command byte; note
    // what the edge will take.
    template <typename Top>
    void before_edge(Top *top) {
        if constexpr (HasDirectLink<Top>::value) {
            bool ready = tx.tick();
            top->link_tx_ready = ready;
            tx_take = ready && top->link_tx_valid;
            tx_byte = top->link_tx_data;
            bool offer = rx.tick() && !commands.empty();
            top->link_rx_valid = offer;
            // ready is a register's (top.py, ByteReceiver): this cycle's value is current
            rx_take = offer && top->link_rx_ready;
            if (offer) top->link_rx_data = commands.front();
        }
    }
    // After the edge: true when a byte left the device (in `byte`).
    bool after_edge(uint8_t &byte) {
        rx.settle(rx_take);
        tx.settle(tx_take);
        if (rx_take) { commands.pop_front(); ++commands_given; }
        if (!tx_take) return false;
        byte = tx_byte;
        return true;
    }
};

volatile std::sig_atomic_t stop_requested = 0;
void on_signal(int) { stop_requested = 1; }

}  // namespace

int main(int argc, char **argv) {
    Options options = parse(argc, argv);
    flash_start<Vtop>();       // keyed builds: the configuration flash (spi_flash.h)
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGPIPE, SIG_IGN);

    int server = socket(AF_INET, SOCK_STREAM, 0);
    int yes = 1;
    setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(options.port);
    if (bind(server, reinterpret_cast<sockaddr *>(&address), sizeof address) != 0 ||
        listen(server, 1) != 0) {
        std::perror("vboard: cannot listen");
        return 3;
    }
    socklen_t length = sizeof address;
    getsockname(server, reinterpret_cast<sockaddr *>(&address), &length);
    std::printf("listening on %d\n", ntohs(address.sin_port));
    std::fflush(stdout);
    int client = accept(server, nullptr, nullptr);
    if (client < 0) { std::perror("vboard: accept"); return 3; }
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);

    auto context = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vtop>(context.get());
    top->registers___05Fw_en = 0;  // Verilator escapes "__" in port names
    top->registers___05Faddr = 0;
    top->registers___05Fw_data = 0;
    top->uart_rx = 1;              // the host's line idles high
    top->clk = 0;
    rhd_start();
    // The design holds itself in reset for its first 4 rising edges (top.py, power-on
    // reset: no logic depends on a reset input); cycle 0 is the first one after them.
    set_reset(top.get(), 1);
    // The first eval() takes the clock's initial level as its previous one: evaluate at 0
    // first, so the first rising edge below counts as one.
    top->eval();
    for (int i = 0; i < 8; ++i) { top->clk = !top->clk; top->eval(); }
    set_reset(top.get(), 0);

    UartReceiver uart(options.divisor);
    UartLineDriver host_line(options.divisor);
    constexpr bool direct = HasDirectLink<Vtop>::value;
    DirectLink link;
    if (direct) {
        if (options.byte_period_num == 0 || options.byte_period_den == 0) {
            std::fprintf(stderr, "vboard: a direct-link build needs --byte-period NUM/DEN\n");
            return 2;
        }
        link.setup(options.byte_period_num, options.byte_period_den);
    }
    FILE *byte_log = options.byte_log.empty() ? nullptr : std::fopen(options.byte_log.c_str(), "wb");
    std::vector<uint64_t> arrivals;
    std::vector<uint8_t> out;
    out.reserve(1 << 16);
    uint64_t cycle = 0, bytes = 0;
    bool client_alive = true;
    const auto started = std::chrono::steady_clock::now();
    const std::clock_t cpu_started = std::clock();  // CPU time of the loop alone
    const uint64_t batch = 1 << 14;  // cycles between socket writes and clock checks

    while (client_alive && !stop_requested && (options.cycles == 0 || cycle < options.cycles)) {
        if (!receive_commands(client, host_line, direct ? &link.commands : nullptr))
            client_alive = false;
        for (uint64_t i = 0; i < batch; ++i, ++cycle) {
            uint8_t byte;
            if constexpr (direct) {
                link.before_edge(top.get());
                flash_before_edge(top.get());
                top->clk = 1; top->eval();
                flash_after_edge(top.get());
                falling_edge(top.get(), options.evals_per_cycle);
                if (link.after_edge(byte)) {
                    out.push_back(byte);
                    if (byte_log) arrivals.push_back(cycle + link.byte_cycles);
                }
                continue;
            }
            top->uart_rx = host_line.clock();
            rhd_before_edge(top.get(), cycle);
            flash_before_edge(top.get());
            top->clk = 1; top->eval();
            rhd_after_edge(top.get(), cycle);
            flash_after_edge(top.get());
            falling_edge(top.get(), options.evals_per_cycle);
            if (uart.clock(top->uart_tx, byte)) {
                out.push_back(byte);
                if (byte_log) arrivals.push_back(cycle);
            }
        }
        if (byte_log && !arrivals.empty()) {
            std::fwrite(arrivals.data(), sizeof arrivals[0], arrivals.size(), byte_log);
            arrivals.clear();
        }
        size_t sent = 0;
        while (sent < out.size()) {
            ssize_t n = send(client, out.data() + sent, out.size() - sent, 0);
            if (n <= 0) { client_alive = false; break; }
            sent += static_cast<size_t>(n);
        }
        bytes += sent;
        out.clear();
        if (options.realtime_hz > 0) {
            auto due = started + std::chrono::duration<double>(cycle / options.realtime_hz);
            std::this_thread::sleep_until(due);
        }
    }
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    char text[256];
    std::snprintf(text, sizeof text,
                  "cycles %llu bytes %llu wall_s %.3f cycles_per_s %.0f framing_errors %llu "
                  "bytes_in %llu",
                  static_cast<unsigned long long>(cycle), static_cast<unsigned long long>(bytes),
                  wall, cycle / wall, static_cast<unsigned long long>(uart.framing_errors),
                  static_cast<unsigned long long>(direct ? link.commands_given
                                                         : host_line.bytes_sent));
    const double cpu = static_cast<double>(std::clock() - cpu_started) / CLOCKS_PER_SEC;
    char cpu_text[96];
    std::snprintf(cpu_text, sizeof cpu_text, " cpu_s %.3f cycles_per_cpu_s %.0f", cpu,
                  cpu > 0 ? cycle / cpu : 0.0);
    const std::string stats = text + std::string(cpu_text) + rhd_stats() + flash_finish<Vtop>()
                              + "\n";
    const char *line = stats.c_str();
    std::fputs(line, stdout);
    if (!options.stats_file.empty()) {
        if (FILE *f = std::fopen(options.stats_file.c_str(), "w")) { std::fputs(line, f); std::fclose(f); }
    }
    if (byte_log) std::fclose(byte_log);
    close(client);
    close(server);
    top->final();
    return 0;
}
