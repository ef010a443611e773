"""``python -m connected_objects`` runs the ``connected-objects`` command."""

from connected_objects.cli import main

if __name__ == "__main__":
    main()
