; pvh_entry.asm - the PVH entry: from a PVH loader straight to the runtime.
;
; The x86/HVM direct boot ABI (Xen's docs/misc/pvh.pandoc; QEMU implements it
; for `-kernel` with an ELF and qboot or its pvh.bin option ROM): the loader
; puts the ELF's PT_LOAD segment at its physical address and jumps to the
; address in the XEN_ELFNOTE_PHYS32_ENTRY note in 32-bit protected mode,
; paging off, flat CS/DS/ES, interrupts off, EBX = physical address of a
; struct hvm_start_info. No stack, GDT or IDT is given. This file is the
; note and the 32-bit code that does what stage 2 does after loading the
; runtime, each step one subroutine, in this order:
;   load_gdt32         our own GDT (stage 2's layout), segments reloaded
;   serial_init32      COM1 115200 8N1, so progress and errors reach a log
;   print_hello        "hftos pvh tsc=0x...": the TSC read at the entry
;   check_start_info   magic, version >= 1 (memory map fields present)
;   check_long_mode    CPUID present and CPUID.80000001h:EDX.LM set
;   clear_boot_info    zero boot_info, stamp its magic
;   read_memmap        hvm_start_info's memory map into boot_info's E820 table
;   check_runtime_ram  one RAM entry holds [load address, end of .bss)
;   setup_page_tables  identity map [0, 4 GiB) with 2 MiB pages, top GiB UC
;                      (boot/page_tables.inc, shared with stage 2 and UEFI)
;   enter_long_mode    PAE, CR3, EFER.LME, PG, far jump to 64-bit code
;   then _start (entry.asm) with rdi = &boot_info, as stage 2 jumps there.
; boot_info is equal in layout to stage 2's (boot_info.h); the boot drive
; is 0 (there is none). boot_info, the page tables and the stack live in
; the .pvh.bss section, which linker.ld puts between the file image and
; .bss: _start's .bss clear leaves them alone, and stage 2's image ignores
; them. Errors print "hftos boot error: <letter>" (codes in
; boot/boot_defs.inc) on COM1, exit QEMU with HFTOS_EXIT_BOOT_FAILED, halt.

bits 32
default abs

%include "boot_defs.inc"
%include "exit_codes.inc"
%include "boot_info.inc"

; --- PVH ABI (Xen public/elfnote.h, public/arch-x86/hvm/start_info.h) ------
XEN_ELFNOTE_PHYS32_ENTRY   equ 18
XEN_NOTE_NAME_SIZE         equ 4          ; "Xen" and its NUL
XEN_NOTE_DESC_SIZE         equ 8          ; a u64: QEMU reads 8 bytes of an ELF64 note
HVM_START_MAGIC            equ 0x336ec578 ; "xEn3" with the 0x80 bit of the "E" set
HVM_START_MIN_VERSION      equ 1          ; version 1 added memmap_paddr/entries
HVM_OFF_MAGIC              equ 0          ; u32
HVM_OFF_VERSION            equ 4          ; u32
HVM_OFF_MEMMAP_PADDR       equ 40         ; u64, version >= 1
HVM_OFF_MEMMAP_ENTRIES     equ 48         ; u32, version >= 1; 0 = no map
HVM_MEMMAP_ENTRY           equ 24         ; addr u64, size u64, type u32, reserved u32
HVM_MEMMAP_OFF_ADDR        equ 0
HVM_MEMMAP_OFF_SIZE        equ 8
HVM_MEMMAP_OFF_TYPE        equ 16
E820_OFF_BASE              equ 0          ; boot_info's e820_entry (boot_info.h)
E820_OFF_TYPE              equ 16
PVH_STACK_SIZE             equ 4096

extern _start, __runtime_start, __runtime_file_end, __bss_end
global pvh_start

; The note QEMU's loader looks for in the PT_NOTE segment (linker.ld). Its
; alignment is 4: QEMU finds the descriptor at the name rounded up to the
; segment's p_align, and the ELF note format rounds to 4.
section .note.Xen progbits alloc noexec nowrite align=4
	dd XEN_NOTE_NAME_SIZE
	dd XEN_NOTE_DESC_SIZE
	dd XEN_ELFNOTE_PHYS32_ENTRY
	db "Xen", 0
	dq pvh_start

section .text progbits alloc exec nowrite align=16
pvh_start:
	cli
	cld
	mov esi, ebx                    ; hvm_start_info, kept in esi throughout
	; fall through: there is no stack to call with before load_gdt32

; load_gdt32 - load our GDT and reload every segment register from it. The
; loader's GDT may be gone and its selectors (SS's too) are unspecified, so
; this step runs inline, before the first push, and sets up our stack.
load_gdt32:
	lgdt [gdt_descriptor]
	jmp SEL_CODE32:.reload
.reload:
	load_data_segments
	mov esp, pvh_stack_top
	rdtsc                           ; the guest clock at our first instructions
	mov [entry_tsc], eax
	mov [entry_tsc + 4], edx
	call serial_init32
	call print_hello
	call check_start_info
	call check_long_mode
	call clear_boot_info
	call read_memmap
	call check_runtime_ram
	mov edi, pvh_pml4               ; hvm_start_info (ESI) is no longer needed
	mov esi, boot_info
	call setup_page_tables
	mov edi, msg_long
	call print32
	jmp enter_long_mode

; --- output --------------------------------------------------------------------

; serial_init32 - COM1 to 115200 8N1, FIFOs on, no interrupts (as stage 2).
serial_init32:
	com1_init
	ret

; putc32 - AL = character, to COM1 with a bounded wait for THRE.
putc32:
	pushad
	mov bl, al
	mov ecx, UART_SPIN_LIMIT
	mov dx, COM1_BASE + UART_LSR
.wait:
	in al, dx
	test al, UART_LSR_THRE
	jnz .send
	loop .wait                      ; no UART: drop the char, keep booting
.send:
	mov dx, COM1_BASE + UART_THR
	mov al, bl
	out dx, al
	popad
	ret

; print32 - EDI = NUL-terminated string.
print32:
	push eax
	push edi
.next:
	mov al, [edi]
	test al, al
	jz .done
	call putc32
	inc edi
	jmp .next
.done:
	pop edi
	pop eax
	ret

; print_hex32 - EAX as 8 hex digits.
print_hex32:
	pushad
	mov ecx, HEX_DIGITS_32
.digit:
	rol eax, 4
	push eax
	and al, 0x0F
	add al, '0'
	cmp al, '9'
	jbe .out
	add al, 'a' - '0' - 10
.out:
	call putc32
	pop eax
	loop .digit
	popad
	ret

; print_hello - "hftos pvh tsc=0x<entry_tsc>": the TSC counts from the VM's
; start under QEMU TCG, so this line says when the PVH entry began (the
; runtime's "boot: phase" lines use the same clock).
print_hello:
	mov edi, msg_hello
	call print32
	mov eax, [entry_tsc + 4]
	call print_hex32
	mov eax, [entry_tsc]
	call print_hex32
	mov edi, msg_crlf
	call print32
	ret

; fatal32 - AL = one-letter error code; never returns.
fatal32:
	mov bl, al
	mov edi, msg_error
	call print32
	mov al, bl
	call putc32
	mov edi, msg_crlf
	call print32
	boot_failed_halt

; --- boot steps ------------------------------------------------------------------

; check_start_info - ESI = hvm_start_info: its magic, and a version that has
; the memory map fields (the runtime needs a map; version 0 has none).
check_start_info:
	cmp dword [esi + HVM_OFF_MAGIC], HVM_START_MAGIC
	jne .bad_magic
	cmp dword [esi + HVM_OFF_VERSION], HVM_START_MIN_VERSION
	jb .old
	ret
.bad_magic:
	mov al, ERR_PVH_START_INFO
	jmp fatal32
.old:
	mov al, ERR_PVH_VERSION
	jmp fatal32

; check_long_mode - CPUID must exist (EFLAGS.ID toggles) and report LM.
check_long_mode_routine fatal32

; clear_boot_info - zero boot_info (.pvh.bss is not zeroed by anyone) and
; stamp its magic and the runtime's place, as stage 2 takes it from the
; image header: [__runtime_start, __runtime_file_end) is the file image.
clear_boot_info:
	mov edi, boot_info
	mov ecx, BOOT_INFO_SIZE
	xor eax, eax
	rep stosb
	mov dword [boot_info + BOOT_INFO_OFF_MAGIC], BOOT_INFO_MAGIC
	mov dword [boot_info + BOOT_INFO_OFF_RT_LOAD], __runtime_start
	mov eax, __runtime_file_end
	sub eax, __runtime_start
	mov [boot_info + BOOT_INFO_OFF_RT_SIZE], eax
	ret

; read_memmap - copy hvm_start_info's memory map (same base/length/type
; layout as E820) into boot_info.e820[], zero-length entries skipped, at
; most BOOT_INFO_E820_MAX kept, the ACPI "enabled" bit set as stage 2
; presets it. The map must exist and lie below 4 GiB (paging is off).
read_memmap:
	mov ecx, [esi + HVM_OFF_MEMMAP_ENTRIES]
	test ecx, ecx
	jz .fail
	cmp dword [esi + HVM_OFF_MEMMAP_PADDR + 4], 0
	jne .fail
	mov ebx, [esi + HVM_OFF_MEMMAP_PADDR]
	mov edi, boot_info + BOOT_INFO_OFF_E820
	xor edx, edx                    ; entries kept
.next:
	mov eax, [ebx + HVM_MEMMAP_OFF_SIZE]
	or eax, [ebx + HVM_MEMMAP_OFF_SIZE + 4]
	jz .skip
	call copy_memmap_entry
	add edi, BOOT_INFO_E820_ENTRY
	inc edx
	cmp edx, BOOT_INFO_E820_MAX
	jae .end
.skip:
	add ebx, HVM_MEMMAP_ENTRY
	loop .next
.end:
	test edx, edx
	jz .fail
	mov [boot_info + BOOT_INFO_OFF_E820_COUNT], edx
	mov edi, msg_memmap
	call print32
	mov eax, edx
	call print_hex32
	mov edi, msg_crlf
	call print32
	ret
.fail:
	mov al, ERR_E820
	jmp fatal32

; copy_memmap_entry - EBX = PVH memmap entry, EDI = boot_info E820 entry.
copy_memmap_entry:
	push eax
	mov eax, [ebx + HVM_MEMMAP_OFF_ADDR]
	mov [edi + E820_OFF_BASE], eax
	mov eax, [ebx + HVM_MEMMAP_OFF_ADDR + 4]
	mov [edi + E820_OFF_BASE + 4], eax
	mov eax, [ebx + HVM_MEMMAP_OFF_SIZE]
	mov [edi + E820_OFF_LENGTH], eax
	mov eax, [ebx + HVM_MEMMAP_OFF_SIZE + 4]
	mov [edi + E820_OFF_LENGTH + 4], eax
	mov eax, [ebx + HVM_MEMMAP_OFF_TYPE]
	mov [edi + E820_OFF_TYPE], eax
	mov dword [edi + E820_OFF_ACPI], E820_ACPI_ENABLED
	pop eax
	ret

; check_runtime_ram - some RAM entry must hold the runtime from its load
; address to the end of .bss (the loader copies the file part wherever it
; is told; with too little memory the .bss, log included, would be
; missing). Entries are 64-bit; the runtime lies below 4 GiB.
check_runtime_ram:
	mov ecx, [boot_info + BOOT_INFO_OFF_E820_COUNT]
	mov ebx, boot_info + BOOT_INFO_OFF_E820
.next:
	cmp dword [ebx + E820_OFF_TYPE], E820_TYPE_RAM
	jne .skip
	cmp dword [ebx + E820_OFF_BASE + 4], 0
	jne .skip                       ; starts above 4 GiB
	cmp dword [ebx + E820_OFF_BASE], __runtime_start
	ja .skip
	mov eax, [ebx + E820_OFF_BASE]  ; edx:eax = base + length (64-bit end)
	xor edx, edx
	add eax, [ebx + E820_OFF_LENGTH]
	adc edx, [ebx + E820_OFF_LENGTH + 4]
	test edx, edx
	jnz .fits                       ; ends at or above 4 GiB
	cmp eax, __bss_end
	jae .fits
.skip:
	add ebx, BOOT_INFO_E820_ENTRY
	loop .next
	mov al, ERR_PVH_NO_RAM
	jmp fatal32
.fits:
	ret

; setup_page_tables (boot/page_tables.inc, stage 2's and the UEFI loader's
; too): EDI = tables (.pvh.bss), ESI = boot_info.
%include "page_tables.inc"

; enter_long_mode - protected mode (paging off) -> long mode, as stage 2's
; second half (Intel SDM vol. 3A 10.8.5). The loader left CR4 clear.
enter_long_mode:
	mov al, PIC_MASK_ALL            ; the runtime polls; no IRQ may arrive
	out PIC1_DATA, al
	out PIC2_DATA, al
	enable_long_mode pvh_pml4
	jmp SEL_CODE64:pvh_long_entry

bits 64
pvh_long_entry:
	load_data_segments
	mov rsp, pvh_stack_top
	mov edi, boot_info
	jmp _start                      ; which clears .bss: no PT_LOAD covers it (linker.ld)

; --- data ------------------------------------------------------------------------
section .rodata progbits alloc noexec nowrite align=8
	boot_gdt                                ; stage 2's GDT, same selectors
gdt_descriptor:
	dw gdt_end - gdt - 1
	dd gdt

msg_hello:  db "hftos pvh tsc=0x", 0
msg_memmap: db "pvh: memory map entries 0x", 0
msg_long:   db "pvh: entering long mode", CR, LF, 0
msg_error:  db "hftos boot error: ", 0
msg_crlf:   db CR, LF, 0

; Not zeroed by the loader or by _start: each step clears what it uses.
section .pvh.bss nobits alloc noexec write align=4096
pvh_pml4:   resb PAGE_TABLES_PAGES * PAGE_SIZE ; PML4, PDPT, page directories
pvh_stack:  resb PVH_STACK_SIZE
pvh_stack_top:
boot_info:  resb BOOT_INFO_SIZE
entry_tsc:  resq 1

section .note.GNU-stack noalloc noexec nowrite progbits
