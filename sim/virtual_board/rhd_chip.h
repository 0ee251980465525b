// spikeforge virtual board: behavioural Intan RHD2132 / RHD2164 / RHD2216 chips on the
// Verilated design's SPI pins, playing ADC samples from a file of int16 samples.
//
// The C++ twin of sim/chips/rhd2000.py (RHD2000Chip, RHD2000Bus), kept to the same
// behaviour so the virtual board and the cocotb benches see the same chip:
//
// * command decoding (CONVERT, CALIBRATE, CLEAR, WRITE, READ), registers 0-17 writable,
//   40-63 ROM ('INTAN', chip name, MISO A/B marker of the RHD2164, die revision,
//   unipolar flag, amplifier count, chip ID);
// * the result of a command is shifted out during the transfer two commands later;
// * the output format of register 4 (offset binary or two's complement);
// * the RHD2164's double-data-rate MISO: B word bits change on rising SCLK edges, A word
//   bits on falling edges (and at CS falling, bit 15);
// * a cable delay per line: a MISO change caused by the edge seen after the rising clock
//   edge of cycle k reaches the pin at the falling edge of cycle k + delay (the Python
//   bus's "delay + 0.5 cycles"), so the design samples it at the rising edge of cycle
//   k + delay + 1.
//
// Conversion k of amplifier a returns frame k of the sample file's column for (line, a),
// or 0 when that amplifier has no column or the file has ended (as the Python model does
// past the end of its array).

#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <string>
#include <utility>
#include <vector>

namespace rhd {

constexpr int kResultLatency = 2;       // firmware.rhd2000.RESULT_LATENCY_COMMANDS
constexpr int kCalibrationDummies = 9;  // firmware.rhd2000.CALIBRATION_DUMMIES
constexpr uint16_t kCalibrate = 0x5500;
constexpr uint16_t kClear = 0x6A00;
constexpr int kRomMisoMarker = 59, kMarkerA = 53, kMarkerB = 58;
constexpr int kDieRevision = 1;         // sim/chips/rhd2000.py DIE_REVISION
constexpr int kMaxDelay = 64;           // ring size for scheduled MISO changes

struct Facts {
    const char *name;
    int chip_id;
    int amplifiers;
    bool unipolar;
    bool ddr;
};

inline bool facts_of(const std::string &name, Facts &out) {
    static const Facts table[] = {
        {"RHD2132", 1, 32, true, false},
        {"RHD2164", 4, 64, true, true},
        {"RHD2216", 2, 16, false, false},
    };
    for (const Facts &f : table)
        if (name == f.name) { out = f; return true; }
    return false;
}

// Interleaved int16 frames (frame-major), shared by all chips.
struct SampleFile {
    std::vector<int16_t> data;
    size_t channels = 0;
    size_t frames = 0;
    bool repeat = false;

    bool load(const std::string &path, size_t channel_count, bool repeat_at_end) {
        FILE *f = std::fopen(path.c_str(), "rb");
        if (!f) return false;
        std::fseek(f, 0, SEEK_END);
        long size = std::ftell(f);
        std::fseek(f, 0, SEEK_SET);
        data.resize(static_cast<size_t>(size) / sizeof(int16_t));
        size_t got = std::fread(data.data(), sizeof(int16_t), data.size(), f);
        std::fclose(f);
        channels = channel_count;
        frames = channels ? got / channels : 0;
        repeat = repeat_at_end;
        return channels > 0;
    }
    int sample(uint64_t frame, int column) const {
        if (column < 0 || frames == 0) return 0;
        if (frame >= frames) {
            if (!repeat) return 0;
            frame %= frames;
        }
        return data[frame * channels + static_cast<size_t>(column)];
    }
};

class Chip {
  public:
    Chip(const Facts &facts, const SampleFile *file) : facts_(facts), file_(file) {
        columns_.fill(-1);
        conversions_.fill(0);
        registers_.fill(0);
        const char company[] = "INTAN";
        for (int i = 0; i < 5; ++i) registers_[40 + i] = static_cast<uint8_t>(company[i]);
        for (int i = 0; facts.name[i]; ++i) registers_[48 + i] = static_cast<uint8_t>(facts.name[i]);
        registers_[60] = kDieRevision;
        registers_[61] = facts.unipolar ? 1 : 0;
        registers_[62] = static_cast<uint8_t>(facts.amplifiers);
        registers_[63] = static_cast<uint8_t>(facts.chip_id);
        for (int i = 0; i < kResultLatency; ++i) pending_.emplace_back(0, 0);
    }

    void map_column(int amplifier, int column) { columns_[amplifier] = column; }
    const Facts &facts() const { return facts_; }

    // The (A, B) words to shift out in the transfer that starts now (CS falls).
    std::pair<uint16_t, uint16_t> next_output() {
        auto out = pending_.front();
        pending_.pop_front();
        return out;
    }
    // The word received in one CS-low period (CS rises): execute it, queue its result.
    void transfer(uint16_t word) { pending_.push_back(execute(word)); }

    uint64_t commands = 0, conversions = 0, calibrations = 0, calibration_violations = 0;

  private:
    bool twos_complement() const { return (registers_[4] >> 6) & 1; }

    uint16_t adc_word(int amplifier) {
        uint64_t k = conversions_[amplifier]++;
        int value = file_ ? file_->sample(k, columns_[amplifier]) : 0;
        return twos_complement() ? static_cast<uint16_t>(value)
                                 : static_cast<uint16_t>(value + 0x8000);
    }

    std::pair<uint16_t, uint16_t> execute(uint16_t word) {
        ++commands;
        int top = word >> 14;
        int reg = (word >> 8) & 0x3F;
        bool ddr = facts_.ddr;
        if (word != kCalibrate) ++since_calibrate_;
        if (top == 0) {                                           // CONVERT
            ++conversions;
            if (since_calibrate_ <= kCalibrationDummies) ++calibration_violations;
            int limit = facts_.amplifiers < 32 ? facts_.amplifiers : 32;
            uint16_t a = reg < limit ? adc_word(reg) : 0;
            uint16_t b = (ddr && reg < 32) ? adc_word(reg + 32) : 0;
            return {a, b};
        }
        if (word == kCalibrate) {
            ++calibrations;
            since_calibrate_ = 0;
            return {0x8000, ddr ? 0x8000 : 0};
        }
        if (word == kClear) return {0, 0};
        if (top == 2) {                                           // WRITE
            uint8_t data = word & 0xFF;
            if (reg <= 17) registers_[reg] = data;
            uint16_t result = 0xFF00 | data;
            return {result, ddr ? result : 0};
        }
        if (top == 3) {                                           // READ
            if (reg == kRomMisoMarker && ddr) return {kMarkerA, kMarkerB};
            uint16_t value = registers_[reg];
            return {value, ddr ? value : 0};
        }
        return {0, 0};
    }

    Facts facts_;
    const SampleFile *file_;
    std::array<uint8_t, 64> registers_{};
    std::array<int, 64> columns_{};
    std::array<uint64_t, 64> conversions_{};
    std::deque<std::pair<uint16_t, uint16_t>> pending_;
    int since_calibrate_ = kCalibrationDummies;
};

// The chips on the shared CS/SCLK/MOSI and one MISO line each (a line may be empty).
class Bus {
  public:
    void add_line(Chip *chip, int cable_delay_cycles) {
        lines_.push_back(Line{chip, cable_delay_cycles});
        lines_.back().scheduled.fill(-1);
    }

    // Before the rising clock edge of cycle `cycle`: the MISO bits that reach the pins now.
    uint32_t miso(uint64_t cycle) {
        const size_t slot = cycle % kMaxDelay;
        for (size_t l = 0; l < lines_.size(); ++l) {
            int8_t &v = lines_[l].scheduled[slot];
            if (v >= 0) {
                miso_ = (miso_ & ~(1u << l)) | (static_cast<uint32_t>(v) << l);
                v = -1;
            }
        }
        return miso_;
    }

    // After the rising clock edge of cycle `cycle`: react to CS / SCLK edges.
    void observe(uint64_t cycle, int cs, int sclk, int mosi) {
        if (cs == last_cs_ && (cs || sclk == last_sclk_)) {
            last_sclk_ = sclk;
            return;
        }
        if (cs != last_cs_) {
            if (!cs) {                                   // CS falls: bit 15 of A
                for (Line &line : lines_) {
                    line.word = line.chip ? line.chip->next_output()
                                          : std::pair<uint16_t, uint16_t>{0, 0};
                    if (line.chip) schedule(line, cycle, line.word.first >> 15 & 1);
                }
                received_ = 0;
                bit_ = 0;
            } else {                                     // CS rises: execute the word
                ++transfers;
                if (first_convert_cycle == UINT64_MAX && (received_ >> 14) == 0)
                    first_convert_cycle = cycle;
                for (Line &line : lines_) {
                    if (!line.chip) continue;
                    line.chip->transfer(received_);
                    schedule(line, cycle, 0);
                }
            }
        } else if (sclk) {                               // rising: sample MOSI; DDR shows B
            received_ = static_cast<uint16_t>((received_ << 1) | (mosi & 1));
            for (Line &line : lines_)
                if (line.chip && line.chip->facts().ddr)
                    schedule(line, cycle, line.word.second >> (15 - bit_) & 1);
            ++bit_;
        } else if (bit_ < 16) {                          // falling: next A bit
            for (Line &line : lines_)
                if (line.chip) schedule(line, cycle, line.word.first >> (15 - bit_) & 1);
        }
        last_cs_ = cs;
        last_sclk_ = sclk;
    }

    uint64_t transfers = 0;
    uint64_t first_convert_cycle = UINT64_MAX;  // cycle of the CS rise ending the first CONVERT

  private:
    struct Line {
        Chip *chip;
        int delay;
        std::array<int8_t, kMaxDelay> scheduled{};
        std::pair<uint16_t, uint16_t> word{0, 0};
    };

    static void schedule(Line &line, uint64_t cycle, int value) {
        line.scheduled[(cycle + line.delay + 1) % kMaxDelay] = static_cast<int8_t>(value);
    }

    std::vector<Line> lines_;
    uint32_t miso_ = 0;
    int last_cs_ = 1, last_sclk_ = 0;
    uint16_t received_ = 0;
    int bit_ = 0;
};

}  // namespace rhd
