// The virtual board's configuration flash: a behavioural SPI NOR flash (4 MiB, 256-byte
// pages) on the pins `flash_sck`, `flash_cs_n`, `flash_copi` (outputs of the design) and
// `flash_cipo` (its input), as keyed builds have them (the device keeps its epoch
// high-water mark there; firmware/epoch_store.py). Shared by main.cpp (UART link) and
// main_eth.cpp (Ethernet link); include after "Vtop.h". A build without the pins compiles
// the hooks to nothing (HasFlashPins), so it behaves exactly as before.
//
// Clocked by sampling the pins after each rising edge of the design's clock: SPI mode 0
// (SCK idles low, COPI sampled when SCK rises, CIPO driven after SCK falls; CIPO reads 1
// while CS is high, as a pulled-up line). Commands:
//
//   0xAB  release from power-down / signature: after 3 dummy bytes, the device ID (0x15)
//   0x06  WREN   write enable (WEL = 1), 0x04 WRDI write disable (WEL = 0); both only when
//                CS rises after exactly 8 bits
//   0x05  RDSR   status, repeated while clocked (bit 0 WIP, bit 1 WEL), live
//   0x03  READ   24-bit address, then bytes from there on, wrapping at the array's end
//   0x02  PAGE PROGRAM  24-bit address, 1..256 data bytes (more: the address keeps wrapping
//                and later bytes replace earlier ones, as Winbond W25Q parts do); carried
//                out when CS rises on a byte boundary and WEL is set: the bytes are ANDed
//                into the array (a program only clears bits), wrapping inside the 256-byte
//                page; then WIP stays set for --flash-program-cycles clocks and WEL is
//                cleared when it ends (a PAGE PROGRAM without data programs nothing and
//                clears WEL)
//
// While WIP is set only RDSR is answered (other commands are ignored and counted), as a real
// part does. Other command bytes are ignored (counted).
//
// Persistence (--flash-file PATH): the flash keeps the region --flash-region-offset /
// --flash-region-bytes in PATH (created erased, 0xFF, if missing; a file of another size is
// refused), written back after every page program (atomically: a temporary file renamed over
// PATH, so a killed board loses nothing) and when the harness ends, so a restarted board
// ("power cycle") finds what it wrote. Without --flash-file the flash is erased every run.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

namespace spiflash {

constexpr uint32_t kArrayBytes = 4u << 20;   // 32 Mbit
constexpr uint32_t kPageBytes = 256;
constexpr uint8_t kDeviceId = 0x15;          // what 0xAB answers for a 32 Mbit part

enum Command : uint8_t {
    kWriteEnable = 0x06, kWriteDisable = 0x04, kReadStatus = 0x05, kRead = 0x03,
    kPageProgram = 0x02, kReleasePowerDown = 0xAB,
};

class Flash {
  public:
    Flash() : array_(kArrayBytes, 0xFF) {}

    // The region kept in `path` (see the file's header); false with `error` set if the
    // file cannot be read or created or has another size.
    bool attach(const std::string &path, uint32_t offset, uint32_t bytes, std::string &error) {
        offset &= kArrayBytes - 1;   // the part ignores the address bits above its size
        if (bytes == 0 || offset > kArrayBytes || bytes > kArrayBytes - offset) {
            error = "the flash region must lie inside the 4 MiB array";
            return false;
        }
        path_ = path;
        region_offset_ = offset;
        region_bytes_ = bytes;
        struct stat info{};
        if (stat(path.c_str(), &info) != 0) {
            if (!save()) { error = "cannot create " + path; return false; }
            return true;
        }
        if (static_cast<uint64_t>(info.st_size) != bytes) {
            error = path + " has " + std::to_string(info.st_size) + " bytes, not the flash "
                    "region's " + std::to_string(bytes) + "; delete it for an erased flash";
            return false;
        }
        FILE *file = std::fopen(path.c_str(), "rb");
        if (!file || std::fread(array_.data() + offset, 1, bytes, file) != bytes) {
            if (file) std::fclose(file);
            error = "cannot read " + path;
            return false;
        }
        std::fclose(file);
        return true;
    }

    // Writes the region back to its file (nothing without one); false if that failed.
    bool save() {
        if (path_.empty()) return true;
        const std::string temporary = path_ + ".tmp";
        FILE *file = std::fopen(temporary.c_str(), "wb");
        if (!file) return false;
        bool ok = std::fwrite(array_.data() + region_offset_, 1, region_bytes_, file)
                  == region_bytes_;
        ok = std::fflush(file) == 0 && ok;
        ok = fsync(fileno(file)) == 0 && ok;
        ok = std::fclose(file) == 0 && ok;
        ok = ok && std::rename(temporary.c_str(), path_.c_str()) == 0;
        if (!ok) ++save_failures;
        return ok;
    }

    void set_program_cycles(uint64_t cycles) { program_cycles_ = cycles; }

    // Once per clock cycle, after the rising edge, with the pins the design drives.
    void clock(int sck, int cs_n, int copi) {
        sck = sck & 1; cs_n = cs_n & 1; copi = copi & 1;
        if (busy_ > 0 && --busy_ == 0) status_wel_ = false;   // the program is done
        if (cs_n) {
            if (selected_) end_transaction();
            selected_ = false;
            cipo_ = 1;
        } else {
            if (!selected_) {
                begin_transaction();
                if (sck) ++mode_violations;        // mode 0: SCK is low when CS falls
            } else if (sck && !last_sck_) {
                if (copi != last_copi_) ++setup_violations;   // COPI moved with the edge
                rising(copi);
            } else if (!sck && last_sck_) {
                falling();
            }
            selected_ = true;
        }
        last_sck_ = sck;
        last_copi_ = copi;
    }

    int cipo() const { return cipo_; }
    uint8_t status() const {
        return static_cast<uint8_t>((busy_ > 0 ? 1 : 0) | (status_wel_ ? 2 : 0));
    }
    uint8_t peek(uint32_t address) const { return array_[address % kArrayBytes]; }

    std::string stats() const {
        char text[256];
        std::snprintf(text, sizeof text,
                      " flash_reads %llu flash_programs %llu flash_ignored %llu "
                      "flash_spi_violations %llu flash_save_failures %llu",
                      static_cast<unsigned long long>(reads),
                      static_cast<unsigned long long>(programs),
                      static_cast<unsigned long long>(ignored),
                      static_cast<unsigned long long>(setup_violations + mode_violations),
                      static_cast<unsigned long long>(save_failures));
        return text;
    }

    uint64_t reads = 0, programs = 0;
    uint64_t ignored = 0;              // unknown commands, commands while busy, PP without WEL
    uint64_t setup_violations = 0, mode_violations = 0, save_failures = 0;

  private:
    void begin_transaction() {
        bits_ = 0;
        shift_ = 0;
        command_ = 0;
        address_ = 0;
        output_ = false;
        out_bits_ = 0;
        skip_ = false;
        cipo_ = 1;
        page_written_.assign(kPageBytes, false);
        page_data_.assign(kPageBytes, 0xFF);
        data_bytes_ = 0;
    }

    void rising(int copi) {
        shift_ = static_cast<uint8_t>(shift_ << 1 | copi);
        if (++bits_ % 8 == 0) byte_in(shift_);
    }

    void byte_in(uint8_t byte) {
        const uint64_t index = bits_ / 8 - 1;
        if (index == 0) {
            command_ = byte;
            if (busy_ > 0 && byte != kReadStatus) { skip_ = true; ++ignored; return; }
            switch (byte) {
                case kReadStatus: output_ = true; break;
                case kWriteEnable: case kWriteDisable: case kRead: case kPageProgram:
                case kReleasePowerDown: break;
                default: skip_ = true; ++ignored;
            }
            return;
        }
        if (skip_) return;
        if (index <= 3 && (command_ == kRead || command_ == kPageProgram)) {
            address_ = (address_ << 8 | byte) % kArrayBytes;
            if (index == 3 && command_ == kRead) { output_ = true; ++reads; }
            return;
        }
        if (index == 3 && command_ == kReleasePowerDown) { output_ = true; return; }
        if (index >= 4 && command_ == kPageProgram) {
            // The page buffer: the column wraps and later bytes at the same place replace
            // earlier ones (W25Q datasheets: "addressing will wrap to the beginning of the
            // page and overwrite previously sent data").
            const uint32_t column = (address_ + data_bytes_) % kPageBytes;
            page_data_[column] = byte;
            page_written_[column] = true;
            ++data_bytes_;
        }
    }

    uint8_t next_output_byte() {
        switch (command_) {
            case kReadStatus: return status();
            case kRead: { uint8_t byte = array_[address_]; address_ = (address_ + 1) % kArrayBytes; return byte; }
            case kReleasePowerDown: return kDeviceId;
            default: return 0xFF;
        }
    }

    void falling() {
        if (!output_ || skip_) return;
        if (out_bits_ == 0) { out_byte_ = next_output_byte(); out_bits_ = 8; }
        --out_bits_;
        cipo_ = (out_byte_ >> out_bits_) & 1;
    }

    void end_transaction() {
        if (skip_ || bits_ == 0) return;
        const bool whole_bytes = bits_ % 8 == 0;
        if (command_ == kWriteEnable && bits_ == 8) status_wel_ = true;
        else if (command_ == kWriteDisable && bits_ == 8) status_wel_ = false;
        else if (command_ == kPageProgram && whole_bytes) {
            if (!status_wel_) { ++ignored; return; }
            if (data_bytes_ == 0) { status_wel_ = false; ++ignored; return; }  // as real parts
            const uint32_t page = address_ - address_ % kPageBytes;
            for (uint32_t column = 0; column < kPageBytes; ++column)
                if (page_written_[column]) array_[page + column] &= page_data_[column];
            ++programs;
            save();
            busy_ = program_cycles_;
            if (busy_ == 0) status_wel_ = false;
        }
    }

    std::vector<uint8_t> array_;
    std::string path_;
    uint32_t region_offset_ = 0, region_bytes_ = 0;
    uint64_t program_cycles_ = 300;
    uint64_t busy_ = 0;
    bool status_wel_ = false;
    bool selected_ = false;
    int last_sck_ = 0, last_copi_ = 0, cipo_ = 1;
    uint64_t bits_ = 0;
    uint8_t shift_ = 0, command_ = 0, out_byte_ = 0;
    uint32_t address_ = 0;
    int out_bits_ = 0;
    bool output_ = false, skip_ = false;
    std::vector<bool> page_written_;
    std::vector<uint8_t> page_data_;
    uint64_t data_bytes_ = 0;
};

}  // namespace spiflash

#ifndef SPIKEFORGE_FLASH_NO_HARNESS
namespace {

// -- the harness's side: options and per-cycle hooks ------------------------------------------
//
//   --flash-file PATH               keep the region in PATH (default: erased every run)
//   --flash-region-offset N         the region kept (firmware/epoch_store.py); decimal or 0x
//   --flash-region-bytes N
//   --flash-program-cycles N        clocks WIP stays set after a page program (default 300)
struct FlashOptions {
    std::string file;
    uint32_t region_offset = 0xFF0000;
    uint32_t region_bytes = 8192;
    uint64_t program_cycles = 300;
};
FlashOptions flash_options;
spiflash::Flash flash_chip;

bool parse_flash_option(const std::string &key, const char *value) {
    FlashOptions &o = flash_options;
    if (key == "--flash-file") o.file = value;
    else if (key == "--flash-region-offset") o.region_offset = std::strtoul(value, nullptr, 0);
    else if (key == "--flash-region-bytes") o.region_bytes = std::strtoul(value, nullptr, 0);
    else if (key == "--flash-program-cycles") o.program_cycles = std::strtoull(value, nullptr, 0);
    else return false;
    return true;
}

// Whether the Verilated top has the flash pins (keyed builds).
template <typename Top, typename = void>
struct HasFlashPins : std::false_type {};
template <typename Top>
struct HasFlashPins<Top, std::void_t<decltype(std::declval<Top &>().flash_cs_n)>>
    : std::true_type {};

// Before the design runs: load (or create) the flash file. Exits with status 2 and a message
// if the file is unusable or given to a build without the pins.
template <typename Top>
void flash_start() {
    if constexpr (HasFlashPins<Top>::value) {
        flash_chip.set_program_cycles(flash_options.program_cycles);
        if (flash_options.file.empty()) return;
        std::string error;
        if (!flash_chip.attach(flash_options.file, flash_options.region_offset,
                               flash_options.region_bytes, error)) {
            std::fprintf(stderr, "vboard: flash: %s\n", error.c_str());
            std::exit(2);
        }
    } else if (!flash_options.file.empty()) {
        std::fprintf(stderr, "vboard: --flash-file given, but this build has no flash pins "
                             "(only keyed builds have them: add a control key)\n");
        std::exit(2);
    }
}
template <typename Top>
inline void flash_before_edge(Top *top) {
    if constexpr (HasFlashPins<Top>::value) top->flash_cipo = flash_chip.cipo();
}
template <typename Top>
inline void flash_after_edge(Top *top) {
    if constexpr (HasFlashPins<Top>::value)
        flash_chip.clock(top->flash_sck, top->flash_cs_n, top->flash_copi);
}
// When the harness ends: the region written back; the flash's statistics ("" without pins).
template <typename Top>
std::string flash_finish() {
    if constexpr (HasFlashPins<Top>::value) {
        flash_chip.save();
        return flash_chip.stats();
    }
    return "";
}

}  // namespace
#endif
