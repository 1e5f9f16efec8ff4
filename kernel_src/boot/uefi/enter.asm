; enter.asm - BOOTX64.EFI's last step, and the runtime it carries.
;
; uefi_enter(rcx = &boot_info, rdx = runtime entry, r8 = the runtime's
; bytes (in .hftrt), r9 = their count), called by loader.c after
; ExitBootServices (Microsoft x64 convention), never returns. The CPU
; is in long mode on the firmware's GDT and identity-mapped page tables;
; this puts it in the state stage 2 and the PVH entry leave for _start:
;   mask the PICs      the runtime polls; no IRQ may arrive
;   load our GDT       stage 2's layout and selectors (boot_defs.inc)
;   setup_page_tables  boot/page_tables.inc, shared with stage 2 and the PVH
;                      entry: [0, 4 GiB) with 2 MiB pages, top GiB uncached,
;                      boot_info.mapped_top set; then CR3
;   our stack, reload CS (far return to SEL_CODE64) and the data segments
;   copy the runtime to boot_info.runtime_load: only now, as the range may
;                      hold the firmware's stack, page tables and GDT (boot
;                      services data, free after ExitBootServices) until here
;   jump to the entry with rdi = &boot_info
; CR4.PAE, EFER.LME and CR0.PG are already set (UEFI 2.10 2.3.4: x64
; firmware runs in long mode with paging on). The code, GDT, tables and
; stack lie in this image, which loader.c checked to be below 4 GiB, so they
; are mapped by both the firmware's tables and ours when CR3 changes.
;
; The runtime (build/runtime.bin, header, config block and all) is the
; .hftrt section, between runtime_payload and runtime_payload_end:
; hftlab patches the config block inside BOOTX64.EFI by its magic, as it
; does in the disk image and the ELF.

bits 64
default rel

%include "boot_defs.inc"
%include "boot_info.inc"

UEFI_STACK_SIZE equ 4096            ; _start moves to its own stack at once

global uefi_enter, uefi_enter_start, uefi_enter_end
global runtime_payload, runtime_payload_end

section .text code align=16
uefi_enter_start:
uefi_enter:
	cli
	mov al, PIC_MASK_ALL
	out PIC1_DATA, al
	out PIC2_DATA, al
	mov r12, rcx                    ; boot_info
	mov r13, rdx                    ; runtime entry
	mov r14, r8                     ; runtime bytes
	mov r15, r9                     ; their count
	lea rax, [gdt]                  ; the firmware chose our address: fill
	mov [gdt_descriptor + 2], rax   ; in the GDT's base now
	lgdt [gdt_descriptor]
	lea rdi, [uefi_tables]          ; below 4 GiB (loader.c, check_below_4g)
	mov esi, r12d
	call setup_page_tables
	lea rax, [uefi_tables]
	mov cr3, rax
	lea rsp, [uefi_stack_top]
	push SEL_CODE64
	lea rax, [.reload]
	push rax
	o64 retf                        ; CS = SEL_CODE64 from our GDT
.reload:
	load_data_segments
	cld
	mov rsi, r14
	mov rdi, [r12 + BOOT_INFO_OFF_RT_LOAD]
	mov rcx, r15
	rep movsb
	mov rdi, r12
	jmp r13

; setup_page_tables (boot/page_tables.inc): EDI = tables, ESI = boot_info.
%include "page_tables.inc"

section .data data align=16
	boot_gdt                                ; stage 2's GDT, same selectors
gdt_descriptor:
	dw gdt_end - gdt - 1
	dq 0                            ; base: written by uefi_enter

section .hftrt rdata align=16
runtime_payload:
	incbin "runtime.bin"
runtime_payload_end:

section .bss bss align=4096
uefi_tables:    resb PAGE_TABLES_PAGES * PAGE_SIZE ; PML4, PDPT, page directories
uefi_stack:     resb UEFI_STACK_SIZE
uefi_stack_top:
uefi_enter_end:
