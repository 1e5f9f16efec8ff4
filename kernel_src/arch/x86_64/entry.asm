; entry.asm - the runtime image header and the 64-bit entry point.
;
; Stage 2 reads the header (layout in runtime/image_header.h) from the first
; sector of the runtime, copies the image to HFTOS_IMAGE_OFF_LOAD and jumps
; to HFTOS_IMAGE_OFF_ENTRY in long mode with rdi = struct boot_info *,
; interrupts off, identity paging of the low 4 GiB; the PVH entry
; (pvh_entry.asm) arrives the same way. _start switches to the
; runtime's own stack, zeroes .bss and calls kmain(), which never returns.

bits 64
default rel

%include "image_header.inc"

BOOT_STACK_SIZE equ 64 * 1024

extern __runtime_start, __runtime_file_end, __bss_start, __bss_end
extern hftos_config, kmain, runtime_returned
global _start

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

section .text.entry progbits alloc exec nowrite align=16
_start:
	cli
	cld
	mov r12, rdi                    ; boot_info survives the .bss clear
	mov rsp, boot_stack_top         ; .bss: zeroed below before any push
	mov rdi, __bss_start
	mov rcx, __bss_end
	sub rcx, rdi
	shr rcx, 3                      ; quadwords: linker.ld aligns both ends to 16
	xor eax, eax
	rep stosq                       ; ~40 MiB: 8x fewer iterations than stosb (TCG runs one per iteration)
	mov rdi, r12
	call kmain
	call runtime_returned           ; panics; never returns
.halt:
	hlt
	jmp .halt

section .bss nobits alloc noexec write align=16
boot_stack:
	resb BOOT_STACK_SIZE
boot_stack_top:

section .note.GNU-stack noalloc noexec nowrite progbits
