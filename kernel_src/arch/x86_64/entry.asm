; entry.asm - the runtime image header and the 64-bit entry point.
;
; Stage 2 reads the header (layout in runtime/image_header.h) from the first
; sector of the runtime, copies the image to HFTOS_IMAGE_OFF_LOAD and jumps
; to HFTOS_IMAGE_OFF_ENTRY in long mode with rdi = struct boot_info *,
; interrupts off, identity paging of the low 4 GiB; the PVH entry
; (pvh_entry.asm) arrives the same way. _start switches to the runtime's
; own stack, loads its GDT, TSS and IDT, makes the pages user-accessible,
; zeroes .bss at CPL3 and comes back to ring 0 through a #UD gate to
; call kmain(),
; which never returns (arch/x86_64/ring.h says why).

bits 64
default rel

%include "image_header.inc"
%include "trap.inc"
%include "ring.inc"

BOOT_STACK_SIZE equ 64 * 1024
RING_USER_STACK_SIZE equ 64 * 1024

extern __runtime_start, __runtime_file_end, __bss_start, __bss_end
extern hftos_config, kmain, runtime_returned, gdt_init, idt_init, ring_init, ring_gate_boot
global _start, _start_kernel, user_stack_top

section .header progbits alloc noexec nowrite align=8
; field OFFSET: place the next field at OFFSET from the header start. A
; field out of order makes the times count negative, which fails the build,
; so this layout cannot drift from image_header.h.
%macro field 1
	times (%1) - ($ - runtime_header) db 0
%endmacro
runtime_header:
	field HFTOS_IMAGE_OFF_MAGIC
	dd HFTOS_IMAGE_MAGIC
	field HFTOS_IMAGE_OFF_VERSION
	dd HFTOS_IMAGE_VERSION
	field HFTOS_IMAGE_OFF_LOAD
	dq __runtime_start
	field HFTOS_IMAGE_OFF_FILE_END
	dq __runtime_file_end
	field HFTOS_IMAGE_OFF_ENTRY
	dq _start
	field HFTOS_IMAGE_OFF_MEM_END
	dq __bss_end
	field HFTOS_IMAGE_OFF_CONFIG
	dq hftos_config
	field HFTOS_IMAGE_OFF_FEATURES
	dd HFTOS_IMAGE_F_CPL3_LOOP      ; arch/x86_64/ring.h

section .text.entry progbits alloc exec nowrite align=16
_start:
	cli
	cld
	mov [boot_info_ptr], rdi        ; .data: survives the .bss clear
	mov rsp, boot_stack_top         ; .bss, not cleared yet: a stack needs no zeroes
	call gdt_init                   ; GDT + TSS, IDT, user pages
	call idt_init                   ; (none of them uses .bss)
	call ring_init
	; .bss is cleared at CPL3: under KVM's PVM flavour ring 0 here is
	; emulated, and rep stosq over ~40 MiB took 4.7 s there (qboot, -m
	; 256, boot to exit 6.0 s wall); at CPL3 it runs natively.
	push GDT_SEL_UDATA | 3
	push boot_stack_top
	push RING_RFLAGS_USER
	push GDT_SEL_UCODE | 3
	push .clear_bss
	iretq
.clear_bss:                         ; CPL3
	mov rdi, __bss_start
	mov rcx, __bss_end
	sub rcx, rdi
	shr rcx, 3                      ; quadwords: linker.ld aligns both ends to 16
	xor eax, eax
	rep stosq                       ; 8x fewer iterations than stosb (TCG runs one per iteration)
	jmp ring_gate_boot              ; #UD -> ring_entry.asm -> _start_kernel at ring 0

_start_kernel:
	mov rsp, boot_stack_top
	mov rdi, [boot_info_ptr]
	call kmain
	call runtime_returned           ; panics; never returns
.halt:
	hlt
	jmp .halt

section .data
align 8
boot_info_ptr: dq 0

section .bss nobits alloc noexec write align=16
boot_stack:
	resb BOOT_STACK_SIZE
boot_stack_top:
user_stack:                         ; ring_user_call's CPL3 stack
	resb RING_USER_STACK_SIZE
user_stack_top:

section .note.GNU-stack noalloc noexec nowrite progbits
