"""Boot gate: qemu commands from qemuboot.conf, real TCG boots of the sample images, a kernel panic."""
from __future__ import annotations

import json

import pytest

from bindistro.errors import BadInput
from bindistro_sample import bootimg
from bindistro.yocto import qemuboot

# Written the way do_write_qemuboot_conf writes them for core-image-minimal (scarthgap-era values).
X86_CONF = """\
[config_bsp]
deploy_dir_image = .
image_link_name = core-image-minimal-qemux86-64.rootfs
image_name = core-image-minimal-qemux86-64.rootfs-20240520101010
kernel_image_bin_ext = .bin
kernel_image_name = bzImage-6.6.23+git0+0ee3f7d9a6_f6fcd6f7b9-r0-qemux86-64-20240520101010
kernel_imagetype = bzImage
machine = qemux86-64
qb_audio_drv = alsa
qb_audio_opt = -device AC97
qb_cmdline_ip_slirp = ip=dhcp
qb_cpu = -cpu IvyBridge -machine q35,i8042=off
qb_cpu_kvm = -cpu IvyBridge -machine q35,i8042=off
qb_default_fstype = ext4
qb_default_kernel = bzImage-6.6.23+git0+0ee3f7d9a6_f6fcd6f7b9-r0-qemux86-64-20240520101010.bin
qb_drive_type = /dev/sd
qb_graphics = -vga std
qb_kernel_cmdline_append = oprofile.timer=1 tsc=reliable no_timer_check rcupdate.rcu_expedited=1 swiotlb=0
qb_mem = -m 256
qb_network_device = -device virtio-net-pci,netdev=net0,mac=@MAC@
qb_opt_append = -usb -device usb-tablet -usb -device usb-kbd
qb_rng = -object rng-random,filename=/dev/urandom,id=rng0 -device virtio-rng-pci,rng=rng0
qb_rootfs_extra_opt = 
qb_serial_opt = -serial mon:stdio -serial null
qb_smp = -smp 4
qb_system_name = qemu-system-x86_64
serial_consoles = 115200;ttyS0 115200;ttyS1
staging_bindir_native = ../../../work/x86_64-linux/qemu-helper-native/1.0/recipe-sysroot-native/usr/bin/
staging_dir_host = ../../../work/qemux86_64-poky-linux/core-image-minimal/1.0/recipe-sysroot
staging_dir_native = ../../../work/qemux86_64-poky-linux/core-image-minimal/1.0/recipe-sysroot-native
tune_arch = x86_64
uninative_loader = ../../../sysroots-uninative/x86_64-linux/lib/ld-linux-x86-64.so.2

"""

ARM_CONF = """\
[config_bsp]
deploy_dir_image = .
image_link_name = core-image-minimal-qemuarm64.rootfs
image_name = core-image-minimal-qemuarm64.rootfs-20240520101010
kernel_imagetype = Image
machine = qemuarm64
qb_cpu = -cpu cortex-a57
qb_cpu_kvm = -cpu host -machine gic-version=3
qb_default_fstype = ext4
qb_default_kernel = Image-6.6.23+git0+0ee3f7d9a6_f6fcd6f7b9-r0-qemuarm64-20240520101010.bin
qb_graphics = -device virtio-gpu-pci
qb_kernel_cmdline_append = swiotlb=0
qb_machine = -machine virt
qb_mem = -m 256
qb_opt_append = -device qemu-xhci -device usb-tablet -device usb-kbd
qb_rng = -object rng-random,filename=/dev/urandom,id=rng0 -device virtio-rng-pci,rng=rng0
qb_rootfs_opt = -drive id=disk0,file=@ROOTFS@,if=none,format=raw -device virtio-blk-pci,drive=disk0
qb_serial_opt = -device virtio-serial-pci -chardev null,id=virtcon -device virtconsole,chardev=virtcon
qb_smp = -smp 4
qb_system_name = qemu-system-aarch64
serial_consoles = 115200;ttyAMA0 115200;hvc0
tune_arch = aarch64

"""


def _deploy(tmp_path, conf_text, kernel, machine):
    d = tmp_path / machine
    d.mkdir()
    conf = d / f"core-image-minimal-{machine}.rootfs-20240520101010.qemuboot.conf"
    conf.write_text(conf_text)
    if kernel:
        (d / kernel).write_bytes(b"kernel")
    rootfs = d / f"core-image-minimal-{machine}.rootfs-20240520101010.ext4"
    rootfs.write_bytes(b"\0" * 1024)
    (d / f"core-image-minimal-{machine}.rootfs.ext4").symlink_to(rootfs.name)
    return conf, d


def test_command_from_real_format_qemux86_64(tmp_path):
    conf, d = _deploy(tmp_path, X86_CONF, "bzImage-6.6.23+git0+0ee3f7d9a6_f6fcd6f7b9-r0-qemux86-64-20240520101010.bin",
                      "qemux86-64")
    qb = qemuboot.load(conf)
    argv = qemuboot.command(qb)
    cmd = " ".join(argv)
    assert argv[0] == "qemu-system-x86_64"
    assert "-nic none" in cmd and "-netdev" not in cmd               # no network unless asked
    assert "-cpu IvyBridge -machine q35,i8042=off -smp 4 -m 256" in cmd
    assert f"-drive file={d}/core-image-minimal-qemux86-64.rootfs-20240520101010.ext4,if=virtio,format=raw" in cmd
    assert "-usb -device usb-tablet -usb -device usb-kbd" in cmd
    assert "-serial mon:stdio -serial null -nographic -vga std" in cmd
    assert argv[argv.index("-kernel") + 1].endswith("r0-qemux86-64-20240520101010.bin")
    append = argv[argv.index("-append") + 1]
    assert append == ("root=/dev/vda rw console=ttyS0 console=ttyS1 oprofile.timer=1 tsc=reliable no_timer_check "
                      "rcupdate.rcu_expedited=1 swiotlb=0")
    assert "mem=" not in append                                       # runqemu adds mem= except on x86
    assert "enable-kvm" not in cmd                                    # TCG only


def test_command_from_real_format_qemuarm64(tmp_path):
    conf, d = _deploy(tmp_path, ARM_CONF, "Image-6.6.23+git0+0ee3f7d9a6_f6fcd6f7b9-r0-qemuarm64-20240520101010.bin",
                      "qemuarm64")
    argv = qemuboot.command(qemuboot.load(conf))
    cmd = " ".join(argv)
    assert argv[0] == "qemu-system-aarch64"
    assert "-machine virt -cpu cortex-a57 -smp 4 -m 256" in cmd
    assert (f"-drive id=disk0,file={d}/core-image-minimal-qemuarm64.rootfs-20240520101010.ext4,if=none,format=raw "
            "-device virtio-blk-pci,drive=disk0") in cmd
    assert argv[argv.index("-append") + 1] == "root=/dev/vda rw mem=256M console=ttyAMA0 console=hvc0 swiotlb=0"
    # nographic: the console is qemu's stdio, QB_SERIAL_OPT (the interactive variant) is not used
    assert "virtconsole" not in cmd and "-serial mon:stdio" in cmd
    net = qemuboot.command(qemuboot.load(conf), network=True)
    assert "user,id=net0,restrict=on" in net and "-nic" not in net


def test_bad_qemuboot_conf_is_one_clear_line(tmp_path, cli):
    bad = tmp_path / "x.qemuboot.conf"
    bad.write_text("QB_SYSTEM_NAME = qemu-system-x86_64\n")
    with pytest.raises(BadInput) as e:
        qemuboot.load(bad)
    assert str(e.value) == f"{bad}: not a qemuboot.conf: no [config_bsp] section"
    conf, d = _deploy(tmp_path, X86_CONF, None, "qemux86-64")
    r = cli("boot", conf, ok=False)
    assert r.exit_code == 1
    assert "kernel not found" in r.stderr and str(conf) in r.stderr


needs_kernels = pytest.mark.skipif(bootimg.boot_inputs("qemux86-64") is None or bootimg.boot_inputs("qemuarm64") is None,
                                   reason="sample kernels not fetched: run scripts/setup.sh (scripts/fetch-boot.sh)")


@needs_kernels
def test_default_settings_boot_a_sample_image(sample_build, cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)       # no project here: runqemu-like defaults, marker "login:", user root
    out = cli.json("boot", sample_build(1) / "tmp" / "deploy" / "images" / "qemuarm64")
    (r,) = out["results"]
    assert r["status"] == "passed" and r["powered_off"]
    assert [c["name"] for c in r["checks"]] == ["architecture", "init is running", "no failed units"]
    assert r["checks"][0]["output"] == "aarch64" and r["checks"][1]["output"] == "init"


@needs_kernels
def test_sample_images_boot_on_both_machines(sample_build, cli):
    images = sample_build(1) / "tmp" / "deploy" / "images"
    out = cli.json("boot", "--sample", images)
    by = {r["machine"]: r for r in out["results"]}
    assert set(by) == {"qemux86-64", "qemuarm64"}
    for machine, arch in (("qemux86-64", "x86_64"), ("qemuarm64", "aarch64")):
        r = by[machine]
        assert r["status"] == "passed", r
        assert r["seconds_to_marker"] > 0
        assert r["checks"][0]["output"] == arch
        assert r["command"][0] == f"qemu-system-{arch}"
        assert r["powered_off"]


@needs_kernels
@pytest.mark.slow
def test_boot_panic_is_reported_with_console_lines(tmp_path, cli):
    proj = tmp_path / "p"
    cli("-C", proj, "init", "--sample")
    build = tmp_path / "b"
    cli("sample-build", "--release", "1", "--formats", "ipk", "--inject", "boot-panic", build)
    cand = cli.json("-C", proj, "stage", build)["candidate"]
    r = cli("-C", proj, "verify", cand, "--gate", "boot", "--json", ok=False)
    assert r.exit_code == 1
    errors = [f for f in json.loads(r.stdout)["findings"] if f["severity"] == "error"]
    assert {f["details"]["machine"] for f in errors} == {"qemux86-64", "qemuarm64"}
    for f in errors:
        assert f["gate"] == "boot" and "kernel panic" in f["message"]
        assert "Attempted to kill init" in f["message"]
        assert any("init exits (injected boot-panic)" in ln for ln in f["details"]["last_lines"])
        log = f["details"]["console_log"]
        assert "Kernel panic" in open(log).read()
    human = cli("-C", proj, "verify", cand, "--last", ok=False).stdout       # the stored report, as people read it
    assert "| bindistro-sample: init exits (injected boot-panic)" in human


def test_panic_line_cut_across_console_reads_is_reported_whole():
    """The console is read in chunks; a panic line split between two reads is still reported whole."""
    import subprocess
    import time

    from bindistro import boot as bootmod
    from bindistro.spec import Boot
    proc = subprocess.Popen(["sh", "-c", "printf 'Kernel panic - not syncing'; sleep 0.5; "
                             "printf ': Attempted to kill init! exitcode=0x00000100\\n'; sleep 5"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        res = bootmod.BootResult("m", "conf", "error", "")
        bootmod._drive(bootmod.Console(proc), Boot(timeout=10), res, time.monotonic())
    finally:
        proc.kill()
        proc.wait()
    assert res.status == "panic"
    assert res.reason == "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100"


@needs_kernels
def test_timeout_names_the_marker_and_last_lines(sample_build, cli):
    conf = next((sample_build(1) / "tmp" / "deploy" / "images" / "qemuarm64").glob("*-2*.qemuboot.conf"))
    r = cli("boot", "--sample", "--marker", "never-printed-marker", "--timeout", "6", conf, "--json", ok=False)
    assert r.exit_code == 1
    res = json.loads(r.stdout)["results"][0]
    assert res["status"] == "timeout"
    assert "never-printed-marker" in res["reason"] and "6 s" in res["reason"]
    assert any("boot complete" in ln for ln in res["last_lines"])


def test_spec_boot_section_is_validated(project, cli):
    import yaml
    path = project / "bindistro.yml"
    data = yaml.safe_load(path.read_text())
    data["boot"]["checks"] = [{"name": "no command"}]
    path.write_text(yaml.safe_dump(data))
    r = cli("-C", project, "releases", ok=False)
    assert r.exit_code == 1
    assert r.stderr.strip() == f"bindistro: error: {path}: boot.checks[0]: must be a command, or a mapping with run (and name, expect)"
    data["boot"]["checks"] = ["uname -m"]
    data["boot"]["marker"] = "("
    path.write_text(yaml.safe_dump(data))
    assert "boot.marker: not a regular expression" in cli("-C", project, "releases", ok=False).stderr
