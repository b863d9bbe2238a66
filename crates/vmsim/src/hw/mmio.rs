//! Memory-mapped I/O: the physical addresses that are not RAM, how an address decodes
//! to a device and an offset in it, and the devices' models. Loads and stores that reach
//! them (through any mapping, the direct map included) go to the device.
//!
//! - The text-mode display: 80x25 cells of two bytes (character, attribute) at physical
//!   0xB8000, as on a PC.
//! - The real-time clock: one 8-byte little-endian register at physical 0xFED0_0000
//!   (where a PC's HPET sits) that reads the simulated time in nanoseconds; writes are
//!   ignored.

use crate::addr::PhysAddr;

/// A memory-mapped device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Device {
    /// The text-mode display: 80x25 cells of (character, attribute) at physical 0xB8000.
    Display,
    /// The real-time clock: one 8-byte register holding the simulated time in
    /// nanoseconds.
    Rtc,
}

/// Physical address of the display's first cell.
pub const DISPLAY_PA: u64 = 0xB8000;
/// Columns of the display.
pub const COLUMNS: usize = 80;
/// Rows of the display.
pub const ROWS: usize = 25;
/// Bytes of the display's cells.
pub const DISPLAY_LEN: u64 = (COLUMNS * ROWS * 2) as u64;
/// Physical address of the clock register.
pub const RTC_PA: u64 = 0xFED0_0000;
/// Bytes of the clock register.
pub const RTC_LEN: u64 = 8;

/// Physical ranges a machine with devices never allocates: the PC's first page (the
/// real-mode interrupt table), its legacy VGA/BIOS hole (which holds the display) and
/// the clock's page.
pub const HOLES: [(u64, u64, &str); 3] = [
    (0, 0x1000, "real-mode interrupt table and BIOS data"),
    (
        0xA0000,
        0x100000,
        "legacy VGA/BIOS hole with the text display at 0xb8000",
    ),
    (RTC_PA, RTC_PA + 0x1000, "real-time clock"),
];

impl Device {
    /// The device's first physical address and length.
    pub fn range(self) -> (PhysAddr, u64) {
        match self {
            Device::Display => (PhysAddr(DISPLAY_PA), DISPLAY_LEN),
            Device::Rtc => (PhysAddr(RTC_PA), RTC_LEN),
        }
    }

    /// The device at physical address `pa`, if any (the whole page of each counts).
    pub fn at(pa: PhysAddr, page_size: u64) -> Option<Device> {
        let page = pa.0 & !(page_size - 1);
        [Device::Display, Device::Rtc]
            .into_iter()
            .find(|d| d.range().0 .0 & !(page_size - 1) == page)
    }

    /// The device whose page holds physical address `pa`, and `pa`'s offset from the
    /// device's first byte (wrapping: an address on the page before the device's
    /// registers has an offset past any register, which reads as nothing).
    pub fn decode(pa: PhysAddr, page_size: u64) -> Option<(Device, u64)> {
        let d = Device::at(pa, page_size)?;
        Some((d, pa.0.wrapping_sub(d.range().0 .0)))
    }

    /// Name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Device::Display => "display",
            Device::Rtc => "rtc",
        }
    }
}

/// The text-mode display's cells.
#[derive(Clone, Debug)]
pub struct Display {
    cells: Vec<u8>,
}

impl Default for Display {
    fn default() -> Self {
        // Blank cells: spaces, light grey on black.
        let mut cells = vec![0u8; DISPLAY_LEN as usize];
        for c in cells.chunks_mut(2) {
            c[0] = b' ';
            c[1] = 0x07;
        }
        Display { cells }
    }
}

impl Display {
    /// Stores `data` at byte `offset` of the cells; bytes past the last cell are dropped.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            if let Some(c) = self.cells.get_mut(offset as usize + i) {
                *c = b;
            }
        }
    }

    /// Loads bytes from `offset`; past the last cell they read 0.
    pub fn read(&self, offset: u64, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.cells.get(offset as usize + i).copied().unwrap_or(0);
        }
    }

    /// The screen as text: 25 lines, trailing blanks trimmed, unprintable characters
    /// shown as spaces.
    pub fn screen(&self) -> String {
        let mut out = String::new();
        for row in self.cells.chunks(COLUMNS * 2) {
            let line: String = row
                .chunks(2)
                .map(|c| {
                    if (0x20..0x7f).contains(&c[0]) {
                        c[0] as char
                    } else {
                        ' '
                    }
                })
                .collect();
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Whether nothing but blanks is on screen.
    pub fn is_blank(&self) -> bool {
        self.cells.chunks(2).all(|c| c[0] == b' ' || c[0] == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_screen_shows_the_characters_not_the_attributes() {
        let mut d = Display::default();
        assert!(d.is_blank());
        d.write((COLUMNS * 2) as u64, b"H\x1fi\x1f");
        let screen = d.screen();
        assert_eq!(screen.lines().count(), ROWS);
        assert_eq!(screen.lines().nth(1), Some("Hi"));
        d.write(DISPLAY_LEN - 1, b"xyz");
        let mut b = [9u8; 2];
        d.read(DISPLAY_LEN, &mut b);
        assert_eq!(b, [0, 0]);
    }

    #[test]
    fn devices_are_found_by_page() {
        assert_eq!(
            Device::at(PhysAddr(0xB8000 + 10), 4096),
            Some(Device::Display)
        );
        assert_eq!(Device::at(PhysAddr(RTC_PA + 4), 4096), Some(Device::Rtc));
        assert_eq!(Device::at(PhysAddr(0x1000), 4096), None);
    }
}
