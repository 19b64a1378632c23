"""
C{bwscd}: the operator's command.  Every subcommand takes C{--data DIR}
(the same default as the service), prints one clear line on an error and
exits non-zero.
"""

import argparse
import json
import sys

from bwscd.categories import CategoryError, CategoryFile

DEFAULT_DATA = "bwscd-data"


def _categories(arguments) -> None:
    categories = CategoryFile(arguments.data)
    if arguments.action == "list":
        for category in categories.read():
            print(f"{category['Id']}\t{category['Name']}")
    elif arguments.action == "add":
        category = categories.add(arguments.name, arguments.id)
        print(f"added {category['Id']}\t{category['Name']}")
    elif arguments.action == "remove":
        category = categories.remove(arguments.id)
        print(f"removed {category['Id']}\t{category['Name']}")
    elif arguments.action == "export":
        print(json.dumps(categories.read(), indent=2, ensure_ascii=False))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="bwscd", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)

    categories = commands.add_parser(
        "categories",
        help="the categories offered to camera users (Categories.json)",
        description="Edit DATA/categories.json; the running server publishes "
        "the change the next time the controller asks.",
    )
    categories.add_argument("--data", default=DEFAULT_DATA, help="data directory")
    actions = categories.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="one line per category: id, name")
    actions.add_parser("export", help="the list as JSON")
    add = actions.add_parser("add", help="add a category")
    add.add_argument("name")
    add.add_argument("--id", help="its id (default: the next free number)")
    remove = actions.add_parser("remove", help="remove a category by id")
    remove.add_argument("id")
    categories.set_defaults(run=_categories)
    return top


def main(argv=None) -> int:
    arguments = parser().parse_args(argv)
    try:
        arguments.run(arguments)
    except (CategoryError, OSError) as e:
        print(f"bwscd {arguments.command}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
