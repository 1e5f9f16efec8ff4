; stage2.asm - from real mode to the 64-bit runtime.
;
; Stage 1 jumps here (0000:STAGE2_ADDR) with DL = boot drive. Each boot step
; is one subroutine, run in this order:
;   serial_init16      COM1 115200 8N1, so progress and errors reach a log
;   check_long_mode    CPUID present and CPUID.80000001h:EDX.LM set
;   enable_a20         already on? else BIOS int 15h AX=2401h, else port 92h;
;                      verified by the 1 MiB wrap-around probe each time
;   read_e820          int 15h EAX=E820h into boot_info
;   load_runtime       EDD reads (AH=42h) in READ_CHUNK_SECTORS chunks into a
;                      low bounce buffer, each chunk copied above 1 MiB in
;                      unreal mode (flat 4 GiB DS/ES limits, a32 rep movsd)
;   enter_long_mode    mask PICs, GDT, protected mode, page tables, PAE,
;                      EFER.LME, PG, far jump to 64-bit code
;   then jump to the runtime entry with rdi = &boot_info.
; The runtime's load address, size and entry come from its image header
; (runtime/image_header.h); nothing about its size is built in here.
; Errors print "hftos boot error: <letter>" (codes in boot_defs.inc) on
; COM1 and the screen, exit QEMU with HFTOS_EXIT_BOOT_FAILED, and halt.

bits 16
%include "boot_defs.inc"
%include "exit_codes.inc"
%include "boot_info.inc"
%include "image_header.inc"

org STAGE2_ADDR

RUNTIME_LBA          equ STAGE2_LBA + STAGE2_SECTORS   ; defined at the end

stage2_entry:
	cli
	mov bx, dx                      ; DL: the boot drive (rdtsc writes EDX)
	rdtsc                           ; when our code began (the TSC counts from
	mov [cs:entry_tsc], eax         ; the VM's start under QEMU TCG): printed in
	mov [cs:entry_tsc + 4], edx     ; the hello line for benchmarks/boot.py
	mov dx, bx
	xor ax, ax
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov sp, REAL_STACK_TOP
	sti
	cld
	call clear_boot_info
	mov [boot_info + BOOT_INFO_OFF_BOOT_DRIVE], dl
	call serial_init16
	mov si, msg_hello
	call print16
	mov eax, [entry_tsc + 4]
	call print_hex32
	mov eax, [entry_tsc]
	call print_hex32
	mov si, msg_crlf
	call print16
	call check_long_mode
	call enable_a20
	call read_e820
	call load_runtime
	mov si, msg_long
	call print16
	jmp enter_long_mode

; --- output ------------------------------------------------------------------

; serial_init16 - COM1 to 115200 8N1, FIFOs on, no interrupts.
serial_init16:
	com1_init
	ret

; putc16 - AL = character, to COM1 with a bounded wait for THRE. Progress
; goes to COM1 only: SeaBIOS under QEMU -nographic mirrors int 10h output to
; the same serial port, so writing both would interleave every character.
putc16:
	pusha
	mov bl, al
	mov cx, UART_SPIN_LIMIT
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
	popa
	ret

; screen_putc16 - AL = character, BIOS teletype (for errors on a monitor).
screen_putc16:
	pusha
	mov ah, BIOS_TELETYPE
	xor bx, bx
	int BIOS_VIDEO
	popa
	ret

; print16 - DS:SI = NUL-terminated string.
print16:
	push ax
	push si
.next:
	lodsb
	test al, al
	jz .done
	call putc16
	jmp .next
.done:
	pop si
	pop ax
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
	call putc16
	pop eax
	loop .digit
	popad
	ret

; fatal16 - AL = one-letter error code; never returns. The message goes to
; COM1 first, then to the screen as a separate pass (see putc16).
fatal16:
	mov bl, al
	mov si, msg_error
	call print16
	call putc16
	mov si, msg_crlf
	call print16
	mov si, msg_error
.screen:
	lodsb
	test al, al
	jz .code
	call screen_putc16
	jmp .screen
.code:
	mov al, bl
	call screen_putc16
	mov al, CR
	call screen_putc16
	mov al, LF
	call screen_putc16
	boot_failed_halt

; --- boot steps ----------------------------------------------------------------

; clear_boot_info - zero boot_info (it lives in unloaded memory) and stamp it.
clear_boot_info:
	push di
	push cx
	push ax
	mov di, boot_info
	mov cx, BOOT_INFO_SIZE
	xor al, al
	rep stosb
	mov dword [boot_info + BOOT_INFO_OFF_MAGIC], BOOT_INFO_MAGIC
	pop ax
	pop cx
	pop di
	ret

; check_long_mode - CPUID must exist (EFLAGS.ID toggles) and report LM.
check_long_mode_routine fatal16

; a20_is_on - CF clear if A20 is enabled: a write to FFFF:0510 (linear
; 0x100500) must not show up at 0000:0500. Both bytes are restored.
a20_is_on:
	push ds
	push es
	push ax
	xor ax, ax
	mov ds, ax
	mov ax, A20_PROBE_HIGH_SEG
	mov es, ax
	mov al, [ds:A20_PROBE_LOW]
	mov ah, [es:A20_PROBE_HIGH_OFF]
	push ax
	mov byte [ds:A20_PROBE_LOW], 0x00
	mov byte [es:A20_PROBE_HIGH_OFF], 0xFF
	cmp byte [ds:A20_PROBE_LOW], 0xFF
	pop ax                          ; pop/mov leave the flags alone
	mov [es:A20_PROBE_HIGH_OFF], ah
	mov [ds:A20_PROBE_LOW], al
	pop ax
	pop es
	pop ds
	je .off
	clc
	ret
.off:
	stc
	ret

; enable_a20 - try nothing, then the BIOS, then fast A20; verify each time.
enable_a20:
	call a20_is_on
	jnc .on
	mov ax, A20_BIOS_ENABLE
	int BIOS_SYSTEM
	call a20_is_on
	jnc .on
	in al, PORT_SYS_CTRL_A
	or al, SYS_CTRL_A_A20
	and al, ~SYS_CTRL_A_RESET & 0xFF
	out PORT_SYS_CTRL_A, al
	call a20_is_on
	jnc .on
	mov al, ERR_A20
	jmp fatal16
.on:
	mov si, msg_a20
	call print16
	ret

; read_e820 - fill boot_info.e820[] (zero-length entries skipped).
read_e820:
	mov di, boot_info + BOOT_INFO_OFF_E820
	xor ebx, ebx
	xor bp, bp                      ; entries kept
.next:
	mov dword [di + E820_OFF_ACPI], E820_ACPI_ENABLED
	mov eax, E820_FUNC
	mov edx, E820_SMAP
	mov ecx, BOOT_INFO_E820_ENTRY
	int BIOS_SYSTEM
	jc .end                         ; CF after the first call = end of list
	cmp eax, E820_SMAP
	jne .fail
	mov eax, [di + E820_OFF_LENGTH]
	or eax, [di + E820_OFF_LENGTH + 4]
	jz .skip
	inc bp
	add di, BOOT_INFO_E820_ENTRY
	cmp bp, BOOT_INFO_E820_MAX
	jae .end
.skip:
	test ebx, ebx
	jnz .next
.end:
	test bp, bp
	jz .fail
	mov [boot_info + BOOT_INFO_OFF_E820_COUNT], bp
	mov si, msg_e820
	call print16
	movzx eax, bp
	call print_hex32
	mov si, msg_crlf
	call print16
	ret
.fail:
	mov al, ERR_E820
	jmp fatal16

; enter_unreal - give DS and ES 4 GiB limits while staying in real mode, so
; a32 string moves can reach above 1 MiB. Reloading a segment register in
; real mode keeps the cached limit, so a BIOS call does not undo this, but
; load_runtime calls it again before every copy anyway.
enter_unreal:
	cli
	push ds
	push es
	lgdt [gdt_descriptor]
	mov eax, cr0
	or al, CR0_PE
	mov cr0, eax
	mov bx, SEL_DATA
	mov ds, bx
	mov es, bx
	and al, ~CR0_PE & 0xFF
	mov cr0, eax
	pop es
	pop ds
	sti
	ret

; read_sectors - EAX = LBA, CX = count (<= READ_CHUNK_SECTORS) into
; BOUNCE_SEG:0, with retries and a disk reset between tries.
read_sectors:
	mov [dap_count], cx
	mov [dap_lba], eax
	mov word [dap_offset], 0
	mov word [dap_segment], BOUNCE_SEG
	mov di, DISK_RETRIES
.retry:
	mov si, dap
	mov dl, [boot_info + BOOT_INFO_OFF_BOOT_DRIVE]
	mov ah, DISK_EXT_READ
	int BIOS_DISK
	jnc .done
	mov ah, DISK_RESET
	mov dl, [boot_info + BOOT_INFO_OFF_BOOT_DRIVE]
	int BIOS_DISK
	mov [dap_count], cx             ; the BIOS rewrites it on failure
	dec di
	jnz .retry
	mov al, ERR_DISK_READ
	jmp fatal16
.done:
	ret

; check_runtime_header - the first sector is in the bounce buffer: check the
; magic and version and take the load address, size and entry from it.
check_runtime_header:
	push fs
	mov ax, BOUNCE_SEG
	mov fs, ax
	cmp dword [fs:HFTOS_IMAGE_OFF_MAGIC], HFTOS_IMAGE_MAGIC
	jne .bad
	cmp dword [fs:HFTOS_IMAGE_OFF_VERSION], HFTOS_IMAGE_VERSION
	jne .bad
	mov eax, [fs:HFTOS_IMAGE_OFF_LOAD + 4]
	or eax, [fs:HFTOS_IMAGE_OFF_FILE_END + 4]
	or eax, [fs:HFTOS_IMAGE_OFF_ENTRY + 4]
	jnz .bad                        ; everything must sit below 4 GiB
	mov eax, [fs:HFTOS_IMAGE_OFF_LOAD]
	cmp eax, RUNTIME_MIN_LOAD
	jb .bad                         ; would overwrite the BIOS and us
	mov [runtime_load], eax
	mov [boot_info + BOOT_INFO_OFF_RT_LOAD], eax
	mov ecx, [fs:HFTOS_IMAGE_OFF_FILE_END]
	sub ecx, eax
	jbe .bad
	mov [boot_info + BOOT_INFO_OFF_RT_SIZE], ecx
	mov eax, [fs:HFTOS_IMAGE_OFF_ENTRY]
	mov [runtime_entry], eax
	pop fs
	ret
.bad:
	mov al, ERR_BAD_HEADER
	jmp fatal16

; load_runtime - read the runtime chunk by chunk and copy it to its load
; address. The first read is one sector, to learn the size from the header.
load_runtime:
	mov eax, RUNTIME_LBA
	mov cx, 1
	call read_sectors
	call check_runtime_header
	mov eax, [boot_info + BOOT_INFO_OFF_RT_SIZE]
	add eax, SECTOR_SIZE - 1
	shr eax, SECTOR_SHIFT
	mov [sectors_left], eax
	mov eax, [runtime_load]
	mov [copy_cursor], eax
	mov dword [next_lba], RUNTIME_LBA
.chunk:
	mov ecx, [sectors_left]
	test ecx, ecx
	jz .done
	cmp ecx, READ_CHUNK_SECTORS
	jbe .sized
	mov ecx, READ_CHUNK_SECTORS
.sized:
	mov [chunk_sectors], cx
	mov eax, [next_lba]
	call read_sectors
	call copy_chunk_up
	movzx ecx, word [chunk_sectors]
	add [next_lba], ecx
	sub [sectors_left], ecx
	jmp .chunk
.done:
	mov si, msg_loaded
	call print16
	mov eax, [boot_info + BOOT_INFO_OFF_RT_SIZE]
	call print_hex32
	mov si, msg_at
	call print16
	mov eax, [runtime_load]
	call print_hex32
	mov si, msg_crlf
	call print16
	ret

; copy_chunk_up - copy chunk_sectors sectors from the bounce buffer to
; copy_cursor (above 1 MiB) and advance the cursor.
copy_chunk_up:
	call enter_unreal
	push ds
	push es
	xor ax, ax
	mov ds, ax
	mov es, ax
	mov esi, BOUNCE_ADDR
	mov edi, [copy_cursor]
	movzx ecx, word [chunk_sectors]
	shl ecx, SECTOR_SHIFT - 2       ; dwords
	cld
	a32 rep movsd
	mov [copy_cursor], edi
	pop es
	pop ds
	ret

; enter_long_mode - real mode -> 32-bit protected mode -> long mode. The SDM
; (vol. 3A 10.8.5) wants protected mode with paging off before IA-32e mode
; is enabled, so go through a short 32-bit stretch.
enter_long_mode:
	cli
	mov al, PIC_MASK_ALL            ; the runtime polls; no IRQ may arrive
	out PIC1_DATA, al
	out PIC2_DATA, al
	lgdt [gdt_descriptor]
	mov eax, cr0
	or eax, CR0_PE
	mov cr0, eax
	jmp SEL_CODE32:protected_entry

bits 32
protected_entry:
	mov ax, SEL_DATA
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov esp, REAL_STACK_TOP
	mov edi, PAGE_TABLES_ADDR
	mov esi, boot_info
	call setup_page_tables
	enable_long_mode PML4_ADDR
	jmp SEL_CODE64:long_entry

; setup_page_tables (boot/page_tables.inc): EDI = tables, ESI = boot_info.
%include "page_tables.inc"

bits 64
long_entry:
	load_data_segments
	mov rsp, REAL_STACK_TOP
	mov edi, boot_info
	mov eax, [runtime_entry]
	jmp rax

; --- data ------------------------------------------------------------------------
bits 16
align 8
	boot_gdt
gdt_descriptor:
	dw gdt_end - gdt - 1
	dd gdt

align 4
dap:
	db DAP_SIZE, 0
dap_count:   dw 0
dap_offset:  dw 0
dap_segment: dw 0
dap_lba:     dq 0

msg_hello:  db "hftos stage2 tsc=0x", 0
msg_a20:    db "stage2: A20 on", CR, LF, 0
msg_e820:   db "stage2: E820 entries 0x", 0
msg_loaded: db "stage2: runtime 0x", 0
msg_at:     db " bytes at 0x", 0
msg_long:   db "stage2: entering long mode", CR, LF, 0
msg_error:  db "hftos boot error: ", 0
msg_crlf:   db CR, LF, 0

	times (SECTOR_SIZE - (($ - $$) % SECTOR_SIZE)) % SECTOR_SIZE db 0
stage2_file_end:
STAGE2_SECTORS equ (stage2_file_end - stage2_entry) / SECTOR_SIZE

; Uninitialised data after the file image (below the page tables).
absolute stage2_file_end
alignb 8
boot_info:      resb BOOT_INFO_SIZE
runtime_load:   resd 1
runtime_entry:  resd 1
entry_tsc:      resd 2          ; TSC at stage2_entry
copy_cursor:    resd 1
next_lba:       resd 1
sectors_left:   resd 1
chunk_sectors:  resw 1
stage2_mem_end:

; Build-time check: a negative reservation fails the assembly when stage 2
; and its data would overflow STAGE2_MAX_SECTORS.
	resb 0 - ((stage2_mem_end - stage2_entry) > STAGE2_MAX_SECTORS * SECTOR_SIZE)
