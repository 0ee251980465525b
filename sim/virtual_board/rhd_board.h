// The virtual board's RHD2000 chips on the SPI pins: their options, the chips and their bus
// (rhd_chip.h), and the per-cycle hooks the harnesses call. Shared by main.cpp (UART link)
// and main_eth.cpp (Ethernet link); include after "Vtop.h".
#pragma once

#include "rhd_chip.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace {

// -- RHD2000 chips on the SPI pins (only in a build of the RHD source) ------------------------
//
//   --rhd-chips RHD2132,RHD2164     chip on each MISO line ("none": no chip)
//   --rhd-delays 2,3                cable delay of each line, in clock cycles
//   --rhd-samples FILE              interleaved int16 frames, --rhd-file-channels columns
//   --rhd-file-channels N
//   --rhd-map L:A,L:A,...           column c plays amplifier A of the chip on line L
//   --rhd-repeat 0|1                replay the file from the start when it ends (else zeros)
struct RhdOptions {
    std::vector<std::string> chips;
    std::vector<int> delays;
    std::string samples;
    size_t file_channels = 0;
    std::vector<std::pair<int, int>> map;
    bool repeat = false;
};
RhdOptions rhd_options;

std::vector<std::string> split(const std::string &text, char separator) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find(separator, start);
        if (end == std::string::npos) end = text.size();
        if (end > start) out.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

bool parse_rhd_option(const std::string &key, const char *value) {
    RhdOptions &o = rhd_options;
    if (key == "--rhd-chips") o.chips = split(value, ',');
    else if (key == "--rhd-delays") for (auto &d : split(value, ',')) o.delays.push_back(std::atoi(d.c_str()));
    else if (key == "--rhd-samples") o.samples = value;
    else if (key == "--rhd-file-channels") o.file_channels = std::strtoull(value, nullptr, 10);
    else if (key == "--rhd-repeat") o.repeat = std::atoi(value) != 0;
    else if (key == "--rhd-map") {
        for (auto &pair : split(value, ',')) {
            size_t colon = pair.find(':');
            if (colon == std::string::npos) return false;
            o.map.emplace_back(std::atoi(pair.substr(0, colon).c_str()),
                               std::atoi(pair.substr(colon + 1).c_str()));
        }
    } else return false;
    return true;
}

// The chips, their sample file and the bus; built from rhd_options.
struct RhdBoard {
    rhd::SampleFile file;
    std::vector<std::unique_ptr<rhd::Chip>> chips;
    rhd::Bus bus;

    void setup(const RhdOptions &o) {
        if (o.delays.size() != o.chips.size()) {
            std::fprintf(stderr, "vboard: --rhd-delays needs one delay per chip\n");
            std::exit(2);
        }
        if (!o.samples.empty() && !file.load(o.samples, o.file_channels, o.repeat)) {
            std::fprintf(stderr, "vboard: cannot read samples from %s\n", o.samples.c_str());
            std::exit(2);
        }
        for (size_t line = 0; line < o.chips.size(); ++line) {
            rhd::Facts facts;
            if (o.delays[line] < 0 || o.delays[line] >= rhd::kMaxDelay - 1) {
                std::fprintf(stderr, "vboard: cable delay must be 0..%d\n", rhd::kMaxDelay - 2);
                std::exit(2);
            }
            if (!rhd::facts_of(o.chips[line], facts)) {
                chips.emplace_back(nullptr);
                bus.add_line(nullptr, o.delays[line]);
                continue;
            }
            chips.emplace_back(new rhd::Chip(facts, &file));
            bus.add_line(chips.back().get(), o.delays[line]);
        }
        for (size_t column = 0; column < o.map.size(); ++column) {
            auto [line, amplifier] = o.map[column];
            if (line < 0 || static_cast<size_t>(line) >= chips.size() || !chips[line] ||
                amplifier < 0 || amplifier >= chips[line]->facts().amplifiers) {
                std::fprintf(stderr, "vboard: --rhd-map %d:%d names no amplifier\n", line, amplifier);
                std::exit(2);
            }
            chips[line]->map_column(amplifier, static_cast<int>(column));
        }
    }

    std::string stats() const {
        uint64_t violations = 0;
        for (auto &chip : chips) if (chip) violations += chip->calibration_violations;
        char text[160];
        std::snprintf(text, sizeof text,
                      " rhd_transfers %llu rhd_first_convert_cycle %lld rhd_calibration_violations %llu",
                      static_cast<unsigned long long>(bus.transfers),
                      bus.first_convert_cycle == UINT64_MAX ? -1LL
                          : static_cast<long long>(bus.first_convert_cycle),
                      static_cast<unsigned long long>(violations));
        return text;
    }
};

#ifdef SPIKEFORGE_RHD_LINES
RhdBoard rhd_board;
inline void rhd_start() { rhd_board.setup(rhd_options); }
inline void rhd_before_edge(Vtop *top, uint64_t cycle) { top->rhd_miso = rhd_board.bus.miso(cycle); }
inline void rhd_after_edge(Vtop *top, uint64_t cycle) {
    rhd_board.bus.observe(cycle, top->rhd_cs, top->rhd_sclk, top->rhd_mosi);
}
inline std::string rhd_stats() { return rhd_board.stats(); }
#else
inline void rhd_start() {}
inline void rhd_before_edge(Vtop *, uint64_t) {}
inline void rhd_after_edge(Vtop *, uint64_t) {}
inline std::string rhd_stats() { return ""; }
#endif
}  // namespace
