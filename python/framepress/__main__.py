from framepress.cli import run

run()
