"""What the measure tests share: a file of the user's own texts, without labels."""
import pytest

from bgeq_utils.inputs import data

TEXTS = ["The cat sat on the mat and purred.", "Dogs bark loudly at night.", "Stock markets fell sharply today.",
         "The central bank raised interest rates again.", "A kitten chased a ball of wool across the room.",
         "Puppies love to play fetch in the park.", "Rain is expected over the weekend.",
         "The football team won the final after extra time.", "New battery chemistry doubles the range of cars.",
         "Researchers sequenced the genome of a rare orchid.", "The museum reopened its ancient history wing.",
         "A short poem about autumn leaves.", "Quarterly earnings beat analysts' expectations.",
         "How do I reset my router password?"]


@pytest.fixture(scope="module")
def own_texts(tmp_path_factory):
    f = tmp_path_factory.mktemp("own") / "my-texts.txt"
    f.write_text("\n\n".join(TEXTS) + "\n", encoding="utf-8")
    return data.load_evalset(str(f))
