"""Hardware bridge (issue 5): servo wire protocols, bus drivers, emulated servo chain, fault
monitor. Never imports mujoco or sim_scenes; an emulator's physics is handed in as a plant."""
