"""Candidate words for prompt text: common English words, lowercase letters only.

Why common words: nearly all of them are one token (with a leading space) in every modern BPE
vocabulary, so a prompt's token count can be steered one token at a time. Exact backends keep
only the words that really are one token in the target tokenizer; the calibrated fallback uses
them all. Why many distinct words: repeating one token would let prefix caching and speculative
decoding behave unlike real traffic.
"""

from __future__ import annotations

WORDS: tuple[str, ...] = tuple(
    """
the of and to in is was for that with as on by at from his her are be this which or an have
had not but were they one all their has been more there also can would who will when if so no
other into its after about what than only time two new first some most over out such up may
them these then year years many people made used where between during under before while
make same part both each those being through well since later world work state city under
three found both group number life high game small name day including known because back
several much long while however following end second early area four place even still own
country family home music because house series film based took water around great way along
end set school best left five among city side night company given public three often world
name book end became show called line place system team down without against war general
government local order power family season form case within main point left whole life
form around name small large four members six must both seven eight nine ten hand head
light book might never thing every once next another less body face fact free full half
land love mind open real road room sound table town week word young letter river field
market paper report story space south north east west tree wind fire earth stone glass
bread apple garden window summer winter spring autumn morning evening river ocean island
mountain valley forest desert village street bridge castle church market harbor station
train plane ship horse bird fish dog cat cow sheep lion bear wolf fox deer rabbit mouse
color green blue red yellow black white brown gray orange purple pink silver gold bright
dark warm cold hot cool soft hard heavy light quick slow strong weak rich poor happy sad
quiet loud clean dirty simple clear early late short tall wide deep flat round sharp
smooth rough fresh old new good bad right wrong true false easy safe fair kind calm proud
brave wise busy ready sure able free close far near high low fast last first final
music song dance picture story poem letter number answer question problem reason result
method model plan idea rule law right duty money price value cost trade bank account
business office worker manager student teacher doctor farmer driver writer artist player
leader member friend parent mother father sister brother child woman man person people
human animal plant food meat rice milk cheese sugar salt coffee tea water juice wine
dinner lunch breakfast kitchen chair desk door floor wall roof bed lamp clock phone
computer screen camera radio paper pencil card box bag bottle cup plate knife spoon
shirt shoe hat coat dress jacket ring watch key map ticket chance choice change course
level amount matter nature science history language culture education health energy
industry interest issue process research service society subject support theory value
action activity building century community condition control difference effect evidence
experience feeling future ground growth image interest moment movement network office
opinion period position practice pressure product program project purpose quality range
record region relation response role section sense series share size skill source
speech stage standard step structure style surface task test thought total training
travel type unit view voice weight wish yard age air art bit care deal end fact goal
job lot news peace rate rest role sale sign term top trip use war way
ask build buy carry catch choose come cook cut draw drink drive eat fall feel fight find
fly follow forget give grow hear help hold hope join jump keep know laugh learn leave
lend listen live look lose love meet move need offer open pay play pull push reach read
remember run say see sell send show sing sit sleep speak spend stand start stay stop
study swim take talk teach tell think throw touch travel try turn understand use visit
wait walk want wash watch wear win wonder work write
""".split()
)


def unique_words() -> list[str]:
    """The candidate words without repeats, in first-seen order."""
    seen: dict[str, None] = {}
    for w in WORDS:
        if w.isascii() and w.isalpha() and w.islower():
            seen.setdefault(w, None)
    return list(seen)
