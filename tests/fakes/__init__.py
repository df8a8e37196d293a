"""Test doubles for outside services that cannot run here (a hosted model API); named `Fake...`."""
