//! The part of QEMU's TCG plugin API (version 1, QEMU 7.2 and later) the plugin uses.
//! QEMU exports these functions from its own binary; the plugin is linked against them
//! when QEMU loads it.

use std::ffi::{c_char, c_int, c_uint, c_void};

/// The plugin's id, given at install.
pub type PluginId = u64;
/// What a memory callback learns about an access (decoded by QEMU's functions).
pub type MemInfo = u32;

/// A translation block being translated (opaque).
#[repr(C)]
pub struct Tb {
    _opaque: [u8; 0],
}

/// An instruction of a block being translated (opaque).
#[repr(C)]
pub struct Insn {
    _opaque: [u8; 0],
}

/// Callbacks read no registers.
pub const CB_NO_REGS: c_int = 0;
/// Memory callbacks for loads and stores.
pub const MEM_RW: c_int = 3;

/// A block is translated.
pub type TbTransCb = extern "C" fn(PluginId, *mut Tb);
/// A block runs.
pub type ExecCb = extern "C" fn(c_uint, *mut c_void);
/// An instruction accesses memory.
pub type MemCb = extern "C" fn(c_uint, MemInfo, u64, *mut c_void);
/// A vCPU (a guest thread) starts or ends.
pub type VcpuCb = extern "C" fn(PluginId, c_uint);
/// A syscall is entered: number and eight arguments.
pub type SyscallCb = extern "C" fn(PluginId, c_uint, i64, u64, u64, u64, u64, u64, u64, u64, u64);
/// A syscall returns: number and result.
pub type SyscallRetCb = extern "C" fn(PluginId, c_uint, i64, i64);
/// QEMU exits.
pub type AtexitCb = extern "C" fn(PluginId, *mut c_void);

extern "C" {
    /// Calls `cb` for every block QEMU translates.
    pub fn qemu_plugin_register_vcpu_tb_trans_cb(id: PluginId, cb: TbTransCb);
    /// Calls `cb` with `data` whenever the block runs.
    pub fn qemu_plugin_register_vcpu_tb_exec_cb(
        tb: *mut Tb,
        cb: ExecCb,
        flags: c_int,
        data: *mut c_void,
    );
    /// Calls `cb` on every memory access of the instruction.
    pub fn qemu_plugin_register_vcpu_mem_cb(
        insn: *mut Insn,
        cb: MemCb,
        flags: c_int,
        rw: c_int,
        data: *mut c_void,
    );
    /// Calls `cb` when a vCPU (a guest thread) is made.
    pub fn qemu_plugin_register_vcpu_init_cb(id: PluginId, cb: VcpuCb);
    /// Calls `cb` when a guest thread enters a syscall.
    pub fn qemu_plugin_register_vcpu_syscall_cb(id: PluginId, cb: SyscallCb);
    /// Calls `cb` when a syscall returns to the guest.
    pub fn qemu_plugin_register_vcpu_syscall_ret_cb(id: PluginId, cb: SyscallRetCb);
    /// Calls `cb` when QEMU exits.
    pub fn qemu_plugin_register_atexit_cb(id: PluginId, cb: AtexitCb, data: *mut c_void);
    /// Instructions in the block.
    pub fn qemu_plugin_tb_n_insns(tb: *const Tb) -> usize;
    /// The block's instruction `idx`.
    pub fn qemu_plugin_tb_get_insn(tb: *const Tb, idx: usize) -> *mut Insn;
    /// The block's first guest address.
    pub fn qemu_plugin_tb_vaddr(tb: *const Tb) -> u64;
    /// The instruction's guest address.
    pub fn qemu_plugin_insn_vaddr(insn: *const Insn) -> u64;
    /// The instruction's length in bytes.
    pub fn qemu_plugin_insn_size(insn: *const Insn) -> usize;
    /// log2 of the access's size.
    pub fn qemu_plugin_mem_size_shift(info: MemInfo) -> c_uint;
    /// Whether the access is a store.
    pub fn qemu_plugin_mem_is_store(info: MemInfo) -> bool;
}

/// The arguments QEMU passes to `qemu_plugin_install`, as C strings.
pub type Argv = *mut *mut c_char;
