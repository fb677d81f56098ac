"""The qemu lab's harness, as a package (`vm-tests/run` and `vm-tests/selftest` are its entry points).

One module per concern:

    common     where things are (vm-tests/, lab/, scenarios/), the log line
    contract   what the harness repeats from the Rust side (the install marker, the stick's label);
               tests/test_contract.py fails when the two drift
    scenario   the scenario model: loading, `extends`, known keys, validation
    disks      disk images: content, digests, `sfdisk --json`
    console    the guest's console protocol: result, exit code, progress lines
    qemu       lab/setup, the initramfs per boot, the QEMU command line, booting and power cuts
    checks     the outside checks: partition tables, pools, datasets, the installed root
    scenario_run  one scenario, step by step
    report     the per-scenario lines, the summary and its JSON
    cli        `vm-tests/run`'s command line
    selftest   `vm-tests/selftest`: sabotaged scenarios must fail with their reason

Python 3.11 standard library only: the lab needs nothing outside Debian's python3. The pure
parts are unit-tested (`python3 -m unittest discover -s vm-tests -p 'test_*.py'`).
"""
