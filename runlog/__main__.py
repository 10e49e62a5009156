from runlog.cli import entry

entry()
