"""``update`` of a project made with ``new --data``: the data contract and the table stay.

The fixture template gains a file rendered from the ``data_schema`` answer; the project is
made on a small table, the user edits files (and versions a new table with DVC), the
template changes, and ``update`` must render the recorded schema (not the churn default),
keep the table's DVC files and every user byte.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops_scaffold.answers import read_recorded_answers
from mlops_scaffold.errors import ProjectError
from mlops_scaffold.owndata.infer import DataRequest, infer_schema
from mlops_scaffold.project import create_project
from mlops_scaffold.stacks import load_stack
from mlops_scaffold.update import update_project

from .helpers import FixtureTemplate, commit_all, rendered_readme, run_git, status

CONTRACT = (
    "target = {{ data_schema.target }}\n"
    "entity = {{ data_schema.entity }}\n"
    "features = {{ data_schema.features | map(attribute='name') | join(',') }}\n"
)
TABLE = "Plant ID,Leaf Width,Soil,class\n" + "".join(
    f"{100 + i},{i * 0.5},{('clay', 'sand', 'loam')[i % 3]},{('yes', 'no')[i % 2]}\n"
    for i in range(12)
)


def own_data_project(tmp_path: Path, template: FixtureTemplate) -> Path:
    template.write("contract.txt.jinja", CONTRACT)
    template.write(".dvc/.gitignore", "/cache\n")  # as the real template's: DVC's cache
    table = tmp_path / "plants.csv"
    table.write_text(TABLE, encoding="utf-8")
    schema = infer_schema(DataRequest(table, "class"))
    return create_project(
        load_stack(profile="startup"), tmp_path / "demo", template=template.root, data=schema
    )


def test_update_keeps_the_data_schema_the_table_and_every_edit(
    tmp_path: Path, template: FixtureTemplate
) -> None:
    project = own_data_project(tmp_path, template)
    contract = "target = class_\nentity = plant_id\nfeatures = leaf_width,soil\n"
    assert (project / "contract.txt").read_text() == contract
    recorded = read_recorded_answers(project)["data_schema"]
    assert (recorded["source"], recorded["target"], recorded["task"]) == (
        "plants.csv", "class_", "binary")
    dvc_file = project / "data" / "source" / "plants.csv.dvc"
    # the user edits the contract file, the README, and versions a new table with DVC
    (project / "contract.txt").write_text(contract + "# checked by me\n")
    (project / "README.md").write_text(rendered_readme().replace("Line five.", "Mine."))
    new_dvc = dvc_file.read_text().replace("size: ", "size: 1")
    dvc_file.write_text(new_dvc)
    commit_all(project)
    template.replace("README.md.jinja", "Line one.", "Line one, new.")
    template.write("contract.txt.jinja", "# the contract\n" + CONTRACT)

    result = update_project(project, template=template.root)

    assert result.status == "updated"
    assert result.changes.modified == ["README.md", "contract.txt"]
    assert result.changes.removed == []
    assert (project / "contract.txt").read_text() == (
        "# the contract\n" + contract + "# checked by me\n"
    )
    assert (project / "README.md").read_text() == rendered_readme().replace(
        "Line one.", "Line one, new.").replace("Line five.", "Mine.")
    assert dvc_file.read_text() == new_dvc
    assert (project / "data" / "source" / ".gitignore").read_text() == "/plants.csv\n"
    assert read_recorded_answers(project)["data_schema"] == recorded
    assert status(project) == ""
    assert update_project(project, template=template.root).status == "up-to-date"


def test_churn_project_records_no_data_schema(project: Path) -> None:
    assert "data_schema" not in read_recorded_answers(project)
    assert "data_schema" not in (project / ".copier-answers.yml").read_text()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"target": "x = 1  # y"}, "data_schema.target 'x = 1  # y' must be a lower-case "
                                   "identifier"),
        ({"features": [{"name": "Leaf Width"}]}, "data_schema.features[0].name 'Leaf Width'"),
        ({"features": "leaf_width"}, "data_schema.features must be a list of mappings"),
        ({"task": "ranking"}, "data_schema.task 'ranking' must be one of binary, multiclass"),
        ({"source": "../../etc/passwd"}, "data_schema.source '../../etc/passwd' must be a "
                                         "file name in data/source/"),
    ],
)
def test_an_edited_data_schema_that_could_break_the_files_is_refused(
    tmp_path: Path, template: FixtureTemplate, change: dict[str, object], message: str
) -> None:
    project = own_data_project(tmp_path, template)
    answers_file = project / ".copier-answers.yml"
    answers = yaml.safe_load(answers_file.read_text())
    answers["data_schema"].update(change)
    answers_file.write_text(yaml.safe_dump(answers))
    commit_all(project, "edit the answers by hand")
    head = run_git(project, "rev-parse", "HEAD")

    with pytest.raises(ProjectError, match="restore it") as caught:
        update_project(project, template=template.root)

    assert message in caught.value.message
    assert run_git(project, "rev-parse", "HEAD") == head
