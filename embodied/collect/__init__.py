"""Collecting demonstrations: scripted experts in simulation (simgen) and teleoperation (record)."""
