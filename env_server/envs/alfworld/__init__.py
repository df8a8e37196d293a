"""ALFWorld on the real engine: TextWorld's PDDL environment with ALFWorld's wrappers, domain and grammar.

Games come from a generator (ALFRED floor plans, receptacles and object classes shipped in the `alfworld`
package; six task types) or, when $SHIFTGYM_ALFWORLD_DATA / `data_dir` points at ALFWorld's `json_2.1.1`
directory, from the real game files with their train / valid_seen / valid_unseen splits.

Difficulty: points = task type (pick_and_place and look_at_obj_in_light 0; pick_clean/heat/cool 1;
pick_two 2) + 1 if every target starts hidden in a closed container + 1 if the room has >= 20 receptacles
+ 1 if it has >= 12 closed containers + 1 if the planner's optimal plan has >= 8 commands.
easy <= 1 point, medium 2-3, hard >= 4 (so pick_two is never easy; pick and look tasks are never hard).

Observations: ALFWorld's own text; `fields` holds the task, location, inventory, admissible commands, the win
flag and `message`, the engine's text (the invalid-command answer included). `lexicon_words()` lists ALFRED's
object and receptacle classes as ALFWorld writes them ("countertop", "desklamp"), for the `lexicon` adapter.

Success is ALFWorld's own win flag (the task's PDDL goal holds); score and reward are 1 on a win, else 0.
Turn limits (30 by default) are the server runtime's job; an episode never truncates itself.
"""

from env_server.envs.alfworld.env import AlfWorldEnv

__all__ = ["AlfWorldEnv"]
