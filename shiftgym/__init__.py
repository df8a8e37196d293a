"""ShiftGym's generated protocol code (`make proto`); nobody edits it by hand."""
