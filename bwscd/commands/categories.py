"""C{bwscd categories}: the categories offered to camera users."""

import json
import os

from bwscd.config import paths
from bwscd.config.settings import Settings
from bwscd.policy.categories import CategoryFile

ERRORS = (ValueError,)  # CategoryError, and a directory that is not bwscd's


def run(arguments) -> None:
    Settings.load(arguments.data)
    categories = CategoryFile(os.path.join(arguments.data, paths.CATEGORIES))
    if arguments.action == "list":
        for category in categories.read():
            print(f"{category['Id']}\t{category['Name']}")
    elif arguments.action == "export":
        print(json.dumps(categories.read(), indent=2, ensure_ascii=False))
    elif arguments.action == "add":
        category = categories.add(arguments.name, arguments.id)
        print(f"added {category['Id']}\t{category['Name']}")
    elif arguments.action == "remove":
        category = categories.remove(arguments.id_or_name)
        print(f"removed {category['Id']}\t{category['Name']}")


def register(subcommands) -> None:
    parser = subcommands.add_parser(
        "categories",
        help="the categories offered to camera users (Categories.json)",
        description="Edit DATA/categories.json; the running server publishes "
        "the change the next time the controller asks.",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="one line per category: id, name")
    actions.add_parser("export", help="the list as JSON")
    add = actions.add_parser("add", help="add a category")
    add.add_argument("name")
    add.add_argument("--id", help="its id (default: the next free number)")
    remove = actions.add_parser("remove", help="remove a category by its id, or by its "
                                               "name if no category has it as id")
    remove.add_argument("id_or_name", metavar="ID_OR_NAME")
    parser.set_defaults(run=run, errors=ERRORS)
